-- Emergency access, "break-glass" (issue 26, SPEC 3.11): off unless the deployment allows it
-- and a provider's user administrator turns it on for the provider (a row here).
CREATE TABLE break_glass_provider (
    hcp_id     BLOB PRIMARY KEY NOT NULL REFERENCES hcp (hcp_id),
    enabled_by BLOB NOT NULL,
    enabled_at TEXT NOT NULL
) STRICT;

-- Each grant: one doctor of one provider, one recipient, a stated reason, four hours.
CREATE TABLE emergency_access (
    grant_id     BLOB PRIMARY KEY NOT NULL,
    recipient_id BLOB NOT NULL REFERENCES recipient (recipient_id),
    hcp_id       BLOB NOT NULL REFERENCES hcp (hcp_id),
    account_id   BLOB NOT NULL,
    reason       TEXT NOT NULL,
    details      TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    until_at     TEXT NOT NULL
) STRICT;

CREATE INDEX emergency_access_recipient ON emergency_access (recipient_id);
CREATE INDEX emergency_access_account ON emergency_access (account_id, started_at);
