-- The patient portal's inbox (issue 26, item 3): a notice by the "app" channel is delivered
-- by being written here, in the transaction of the action that caused it; the portal reads
-- it and marks it read. Notices by post stay in outbox_message as the office's print queue.
CREATE TABLE inbox_message (
    id           UUID PRIMARY KEY NOT NULL,
    recipient_id UUID NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    template     TEXT NOT NULL,
    params       JSONB NOT NULL,
    locale       TEXT NOT NULL,        -- en | zh-HK
    read_at      TIMESTAMPTZ
);

CREATE INDEX inbox_message_recipient ON inbox_message (recipient_id, id);

-- App notices queued before the inbox existed: those carrying a secret or a change of the
-- registration go by SMS instead (their address is the phone number: core::notification::
-- channel_for); the others move into the inbox.
UPDATE outbox_message SET channel = 'sms'
    WHERE channel = 'app' AND status = 'pending'
    AND template IN ('access-key', 'one-time-password', 'login-code', 'registration-changed');
INSERT INTO inbox_message (id, recipient_id, created_at, template, params, locale)
    SELECT id, recipient, created_at, template, params, locale FROM outbox_message
    WHERE channel = 'app' AND recipient IS NOT NULL AND status = 'pending';
DELETE FROM outbox_message WHERE channel = 'app' AND status = 'pending';
