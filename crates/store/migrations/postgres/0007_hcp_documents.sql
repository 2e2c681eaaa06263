-- Supporting documents of a provider's application (business registration certificate, ...),
-- kept with their SHA-256 so that a copy can be checked against what was received.
CREATE TABLE hcp_document (
    document_id  UUID PRIMARY KEY NOT NULL,
    hcp_id       UUID NOT NULL REFERENCES hcp (hcp_id),
    kind         TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    media_type   TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    content      BYTEA NOT NULL,
    uploaded_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX hcp_document_hcp ON hcp_document (hcp_id);
