-- The notification outbox (SPEC 3.10): messages are written in the same transaction as the
-- action that causes them and delivered later by a worker, with retries. Parameters (which may
-- hold an access key or a one-time password) are erased once the message is delivered or has
-- failed for good.
CREATE TABLE outbox_message (
    id              UUID PRIMARY KEY NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    recipient       UUID,
    address         TEXT NOT NULL,
    channel         TEXT NOT NULL,
    template        TEXT NOT NULL,
    params          JSONB NOT NULL,
    locale          TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    finished_at     TIMESTAMPTZ
);

CREATE INDEX outbox_message_due ON outbox_message (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_message_recipient ON outbox_message (recipient, created_at) WHERE recipient IS NOT NULL;
