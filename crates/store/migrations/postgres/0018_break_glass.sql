-- Emergency access, "break-glass" (issue 26, SPEC 3.11): off unless the deployment allows it
-- and a provider's user administrator turns it on for the provider (a row here).
CREATE TABLE break_glass_provider (
    hcp_id     UUID PRIMARY KEY NOT NULL REFERENCES hcp (hcp_id),
    enabled_by UUID NOT NULL,
    enabled_at TIMESTAMPTZ NOT NULL
);

-- Each grant: one doctor of one provider, one recipient, a stated reason, four hours.
CREATE TABLE emergency_access (
    grant_id     UUID PRIMARY KEY NOT NULL,
    recipient_id UUID NOT NULL REFERENCES recipient (recipient_id),
    hcp_id       UUID NOT NULL REFERENCES hcp (hcp_id),
    account_id   UUID NOT NULL,
    reason       TEXT NOT NULL,
    details      TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    until_at     TIMESTAMPTZ NOT NULL
);

CREATE INDEX emergency_access_recipient ON emergency_access (recipient_id);
CREATE INDEX emergency_access_account ON emergency_access (account_id, started_at);
