-- Healthcare providers and their service locations (SPEC 4.1). The lifecycle is stored as its
-- stage; the status at a moment (lapsed, a withdrawal not yet effective) is computed by
-- ehrshare-core when read.
CREATE TABLE hcp (
    hcp_id          UUID PRIMARY KEY NOT NULL,
    name_en         TEXT NOT NULL,
    name_zh         TEXT NOT NULL,
    br_number       TEXT NOT NULL,
    hcp_type        TEXT NOT NULL,
    sector          TEXT NOT NULL,
    authorised_person JSONB NOT NULL,
    contact_person  JSONB NOT NULL,
    stage           TEXT NOT NULL,
    stage_at        TIMESTAMPTZ NOT NULL,
    stage_reason    TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE hcp_location (
    location_id  UUID PRIMARY KEY NOT NULL,
    hcp_id       UUID NOT NULL REFERENCES hcp (hcp_id),
    name_en      TEXT NOT NULL,
    name_zh      TEXT NOT NULL,
    room_floor   TEXT,
    building     TEXT,
    street       TEXT NOT NULL,
    district     TEXT NOT NULL,
    phone        TEXT NOT NULL,
    qr_token     TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX hcp_location_hcp ON hcp_location (hcp_id);
CREATE INDEX hcp_location_district ON hcp_location (district);
