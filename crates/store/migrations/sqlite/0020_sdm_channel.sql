-- An SDM's own notification channel (issue 26, item 3): notices to an SDM reach them by SMS
-- (as before) or by e-mail, whatever the recipient's own channel is.
ALTER TABLE recipient_sdm ADD COLUMN email TEXT;
ALTER TABLE recipient_sdm ADD COLUMN notify_channel TEXT NOT NULL DEFAULT 'sms';
