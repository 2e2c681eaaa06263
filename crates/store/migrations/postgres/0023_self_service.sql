-- The patient portal's self-service (issue 27; ADR 0021).
-- A one-time code now says what it is for: a login, a password reset, or a new contact (whose
-- address waits in `payload` until the code sent to it comes back). A code of one purpose never
-- answers another.
ALTER TABLE login_challenge ADD COLUMN purpose TEXT NOT NULL DEFAULT 'login';
ALTER TABLE login_challenge ADD COLUMN payload TEXT;

-- The date of birth an identity provider asserted at a person's first login through it: an
-- online registration is verified at once only when it gives the same date (ADR 0021).
ALTER TABLE oidc_link ADD COLUMN birth_date TEXT;

-- A recipient's report of a suspicious access is a case beside the alerts: the person who
-- reported it is told the outcome.
ALTER TABLE alert ADD COLUMN reported_by UUID;
CREATE INDEX alert_recipient ON alert (recipient_id, created_at);

-- The notices that a child's SDM's authority ends at 16 go once per SDM (issue 27, item 7).
CREATE TABLE sdm_ending_notice (
    recipient_id UUID NOT NULL,
    sdm_id       UUID NOT NULL,
    sent_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (recipient_id, sdm_id)
);
