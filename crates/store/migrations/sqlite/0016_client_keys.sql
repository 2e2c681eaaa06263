-- SMART Backend Services (issue 25, ADR 0015): a clinic system authenticates with a JWT signed
-- by its own private key; its provider's user administrator registers the public keys, a JWK
-- Set. NULL for a client that authenticates with its secret.
ALTER TABLE oauth_client ADD COLUMN jwks TEXT;

-- Each client assertion's `jti`, kept until the assertion expires, so that none is used twice.
CREATE TABLE oauth_assertion (
    client_id  TEXT NOT NULL REFERENCES oauth_client (client_id),
    jti        TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (client_id, jti)
) STRICT;

CREATE INDEX oauth_assertion_expiry ON oauth_assertion (expires_at);

-- A professional's app launched for one patient (SMART `launch/patient`): the patient chosen
-- at authorization, carried by the code to the token, which reaches that patient only.
ALTER TABLE oauth_code ADD COLUMN patient_id BLOB;
ALTER TABLE oauth_token ADD COLUMN patient_id BLOB;
