# ehrshare portal strings, English. Every id here must exist in zh-HK/main.ftl too (a test checks).

site-name = ehrshare
site-tagline = Electronic Health Record Sharing
lang-switch-label = Language
lang-en = English
lang-zh-hk = 繁體中文
skip-to-content = Skip to main content

home-title = Welcome to ehrshare
home-intro = ehrshare keeps one lifelong electronic health record for each person who joins, built from the records their healthcare providers deposit.
home-consent = A healthcare professional at another provider sees your records only with your sharing consent, only while you are under that provider's care, and only the parts their role needs.
home-audit = Every access to your record is logged, and you can see who looked.
home-status = This service is being set up. Provider directory, patient and provider portals are coming.

footer-text = ehrshare is open-source software modelled on Hong Kong's Electronic Health Record Sharing System.

error-title = Something went wrong
error-request-id = Request reference
error-back-home = Back to the home page
error-not-found = The page you asked for does not exist.
error-method-not-allowed = This page does not accept that kind of request.
error-payload-too-large = What you sent is too large.
error-unsupported-media-type = What you sent is in a format this page does not accept.
error-malformed-request = The request could not be understood.
error-timeout = The request took too long. Please try again.
error-store-unavailable = The service is temporarily unavailable. Please try again in a moment.
error-internal = An unexpected error occurred. If it persists, quote the reference below.
error-rate-limited = Too many requests from your network. Please wait a moment and try again.
error-generic = The request could not be completed.

authorize-title = Allow a clinic system to act for you
authorize-intro = Your clinic system asks to read or write records in ehrshare as you. Everything it does is logged under your name, within what your role may see.
authorize-client = Clinic system
authorize-scopes = Access asked for
authorize-account = Your account
authorize-allow = Allow
