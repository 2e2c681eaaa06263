# Notification texts, English. Every id here must exist in zh-HK.ftl too (a test checks).
# Each template has a -subject (e-mail) and a -body (every channel).

access-key-subject = Your eHealth access key
access-key-body = Your ehrshare access key is { $key }. Give it only to a healthcare provider you want to share your records with. It replaces any earlier key.

one-time-password-subject = Your one-time password
one-time-password-body = Your ehrshare one-time password is { $code }. It expires in { $minutes } minutes. Never tell it to anyone who calls you.

consent-changed-subject = Your sharing consent has changed
consent-changed-body = Your sharing consent with { $provider } changed on { $time }: { $change ->
    [given-one-year] given for one year
    [given-indefinite] given without an end date
    [given] given
   *[revoked] revoked
}. If this was not you, call the eHR Office.

emergency-access-subject = Your eHealth record was opened in an emergency
emergency-access-body = { $provider } opened the emergency part of your eHealth record without your sharing consent on { $time }, for four hours. Reason given: { $reason ->
    [unconscious] the patient was unconscious
    [life-threatening] a life-threatening condition
    [unable-to-communicate] the patient could not communicate
   *[other] another emergency
}. The access is reviewed; if you have concerns, call the eHR Office.

access-notice-subject = Your eHealth record was viewed
access-notice-body = { $provider } viewed your eHealth record on { $time }. The patient portal shows every access to your record.

access-key-locked-subject = Your access key is locked
access-key-locked-body = A wrong ehrshare access key was entered for you several times at { $provider }, so your access key is locked for now. If this was not you, call the eHR Office.

unlock-code-locked-subject = Unlocking your restricted records is locked
unlock-code-locked-body = Wrong one-time passwords were entered several times at { $provider } to unlock your restricted records, so unlocking is locked for now. If this was not you, call the eHR Office.

alert-subject = ehrshare access alert
alert-body = Access alert for review: { $summary }

registration-changed-subject = Your eHealth registration has changed
registration-changed-body = Your ehrshare registration { $status ->
        [active] is active again
        [suspended] has been suspended by the eHR Office
       *[withdrawn] has been withdrawn: your records are kept but no longer shared
    }. If you did not ask for this, call the eHR Office.

initial-password-subject = Your ehrshare account
initial-password-body = An ehrshare account { $user } was opened for you at { $provider }. Your first password is { $password }. At your first login you must change it and enrol your security token.

password-reset-subject = Your ehrshare account was reset
password-reset-body = Your ehrshare account { $user } was reset by your user administrator. Your new first password is { $password }. At your next login you must change it and enrol your security token again.

login-code-subject = Your ehrshare login code
login-code-body = Your ehrshare login code is { $code }. It expires in { $minutes } minutes. If you are not logging in, someone knows your password: change it.

account-granted-subject = An ehrshare account's role was granted
account-granted-body = The ehrshare account { $user } now holds the role { $role }, granted by { $by }. If this is not expected, tell your provider's user administrator and the eHR Office.

preferences-changed-subject = Your eHealth notification settings changed
preferences-changed-body = Your eHealth notification settings were changed: notices now come to you this way, in this language. If you did not change them, call the eHR Office.

password-code-subject = Your eHealth password code
password-code-body = Your code to set a new eHealth password is { $code }. It expires in { $minutes } minutes. If you did not ask for it, someone knows your access key or is logged in as you: call the eHR Office.
password-changed-subject = Your eHealth password changed
password-changed-body = The password of your eHealth login was changed and every other session ended. If you did not change it, call the eHR Office.
contact-code-subject = Confirm your new eHealth contact
contact-code-body = Your code to confirm this contact for eHealth is { $code }. It expires in { $minutes } minutes. If you did not ask for it, ignore this message.
contact-changed-subject = Your eHealth contact details changed
contact-changed-body = The { $kind } on your eHealth registration was changed. Notices and codes now go to the new one. If you did not change it, call the eHR Office.
registration-received-subject = Your eHealth registration was received
registration-received-body = Your eHealth registration was received and waits for your identity to be verified: bring your identity document (and, for a child, the birth certificate) to the eHR Office or a registration centre, or log in with iAM Smart and register there. Your access key is sent when it is verified. If you are registered already, nothing was changed.
report-concluded-subject = Your report of an access to your eHealth record
report-concluded-body = The access you reported on { $date } was reviewed. The outcome: { $outcome }
sdm-ending-subject = A substitute decision maker's authority ends soon
sdm-ending-body = On { $date } the person you act for as substitute decision maker turns 16 and your authority ends. They will manage their own eHealth record from then on: they log in with their own identity document (ask the eHR Office for a new access key, sent to them).
takeover-subject = You can manage your own eHealth record
takeover-body = From { $date } you manage your own eHealth record; the substitute decision maker who acted for you can no longer act. Set up your login with your identity document and a new access key (ask for one at the eHR Office); your sharing consents stay as they were.
registration-attempt-subject = Someone tried to register your document for eHealth
registration-attempt-body = Someone tried to register your identity document for eHealth online, but it is registered already; nothing was changed. If it was not you, call the eHR Office.
contact-confirm-code-subject = Confirm a change of your eHealth contact
contact-confirm-code-body = Someone asked to change the mobile number or e-mail address of your eHealth registration. If it was you, your code to confirm it from this phone is { $code } (it expires in { $minutes } minutes). If it was not you, do not give it to anyone and call the eHR Office.
