-- The notification outbox (SPEC 3.10): messages are written in the same transaction as the
-- action that causes them and delivered later by a worker, with retries. Parameters (which may
-- hold an access key or a one-time password) are erased once the message is delivered or has
-- failed for good.
CREATE TABLE outbox_message (
    id              BLOB PRIMARY KEY NOT NULL,
    created_at      TEXT NOT NULL,
    recipient       BLOB,                 -- the healthcare recipient it concerns, if any
    address         TEXT NOT NULL,        -- phone number, e-mail address, ...
    channel         TEXT NOT NULL,        -- sms | email | post | app
    template        TEXT NOT NULL,
    params          TEXT NOT NULL,        -- JSON object
    locale          TEXT NOT NULL,        -- en | zh-HK
    status          TEXT NOT NULL,        -- pending | delivered | failed
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    finished_at     TEXT
) STRICT;

CREATE INDEX outbox_message_due ON outbox_message (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_message_recipient ON outbox_message (recipient, created_at) WHERE recipient IS NOT NULL;
