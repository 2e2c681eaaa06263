-- Consent by QR scan (issue 26, item 4; ADR 0018): the signed receipt of each consent given by
-- scanning a location's code, kept as returned. (A location's codes are revoked by replacing
-- its nonce, hcp_location.qr_token: no new column.)
CREATE TABLE consent_receipt (
    consent_id   BLOB PRIMARY KEY NOT NULL REFERENCES consent (consent_id),
    recipient_id BLOB NOT NULL,
    body         TEXT NOT NULL,       -- the canonical bytes signed (RFC 8785 JSON)
    signature    TEXT NOT NULL,       -- Ed25519, base64url without padding
    key_id       TEXT NOT NULL,       -- which receipt key signed
    created_at   TEXT NOT NULL
) STRICT;
