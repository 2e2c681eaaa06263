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

hcp-login-title = Healthcare provider login
hcp-login-heading = Log in
hcp-login-user-name = User name
hcp-login-password = Password
hcp-login-token = Security token code
hcp-login-token-hint = The six digits your security token shows now. Leave it empty only at your first login.
hcp-login-submit = Log in
login-refused = The user name, password or security code is not right, or the account cannot log in now.
login-throttled = Too many failed attempts. Wait a moment before trying again.
hcp-reminder-heading = Important reminder
hcp-reminder-1 = All patient information is strictly confidential.
hcp-reminder-2 = Only access patient data for providing healthcare, when it is needed.
hcp-reminder-3 = All access is logged.
hcp-reminder-4 = Do not share your account or security token.
hcp-reminder-5 = Please change your password regularly.
hcp-tips-heading = Tips for users
hcp-tip-1 = Never tell anyone your user name or password, or share them.
hcp-tip-2 = Choose a strong password and change it regularly.
hcp-tip-3 = Keep your login details safe.
hcp-tip-4 = Log out when you finish using the system.
hcp-tip-5 = Report any suspicious access at once.
hcp-admin-tips-heading = Tips for user administrators
hcp-admin-tip-1 = Open a personal account for every user.
hcp-admin-tip-2 = Make sure only authorised healthcare professionals can see patients' electronic health records.
hcp-admin-tip-3 = Keep users' details up to date.
hcp-admin-tip-4 = End the accounts of staff who leave, in good time.
hcp-admin-tip-5 = Record and manage each user's access rights carefully.
hcp-admin-tip-6 = Report any suspicious access at once.
hcp-home-title = Provider portal
hcp-home-user = Logged in as
hcp-home-role = Role
hcp-home-provider = Healthcare provider
hcp-home-reminder = Only access a patient's record when you provide them with healthcare. Every access is logged and the patient can see it.
hcp-logout = Log out

pics-title = Personal Information Collection Statement
pics-1 = Purpose: the personal data you give when you join ehrshare, give a sharing consent or use a portal (names, identity document, date of birth, sex, contact details) are used to register you, to identify you, to share your health records with the healthcare providers you have consented to, and to tell you about access to your record.
pics-2 = Healthcare providers' users: your name, role, professional registration number, mobile number and account activity are used to give you access, to keep the audit log and to investigate suspicious access.
pics-3 = Giving the data is voluntary, but without it we cannot register you or open an account.
pics-4 = The data may be disclosed to the healthcare providers you consented to (within what their roles need), to the eHR Office for administration and audit, and where the law requires.
pics-5 = Every access to a health record is logged with who, when, which provider and why; the recipient can see this log in the patient portal.
pics-6 = You may ask to see and correct your personal data. Write to the eHR Office's privacy officer.
privacy-title = Privacy Policy Statement
privacy-1 = ehrshare keeps one lifelong electronic health record for each person who joins. Records come from healthcare providers and are shared only as the recipient's consent and the law allow.
privacy-2 = A professional sees a record only with the recipient's sharing consent, only while the recipient is under that provider's care, and only the parts that the professional's role needs. Parts the recipient has put under restricted control stay hidden until the recipient authorises their use.
privacy-3 = Every access, allowed or refused, is written to a tamper-evident audit log before any data leaves. Suspicious access raises an alert for review by the provider and the eHR Office.
privacy-4 = This site sets one session cookie when you log in (to keep you logged in and to protect your forms) and one cookie that remembers your language. It uses no tracking or advertising cookies.
privacy-5 = Pages that show personal or health data are not stored by your browser. Log out when you finish, especially on a shared computer.
privacy-6 = Questions and complaints about privacy go to the eHR Office's privacy officer.
info-back-to-login = Back to the login page
