-- Healthcare providers and their service locations (SPEC 4.1). The lifecycle is stored as its
-- stage; the status at a moment (lapsed, a withdrawal not yet effective) is computed by
-- ehrshare-core when read.
CREATE TABLE hcp (
    hcp_id          BLOB PRIMARY KEY NOT NULL,
    name_en         TEXT NOT NULL,
    name_zh         TEXT NOT NULL,
    br_number       TEXT NOT NULL,          -- business / company registration number
    hcp_type        TEXT NOT NULL,
    sector          TEXT NOT NULL,
    authorised_person TEXT NOT NULL,        -- JSON {name, position, mobile}
    contact_person  TEXT NOT NULL,          -- JSON {name, phone, email}
    stage           TEXT NOT NULL,          -- draft | submitted | accepted | rejected | active | suspended | withdrawn | cancelled
    stage_at        TEXT NOT NULL,          -- when the stage began (or takes effect)
    stage_reason    TEXT,
    created_at      TEXT NOT NULL
) STRICT;

CREATE TABLE hcp_location (
    location_id  BLOB PRIMARY KEY NOT NULL,
    hcp_id       BLOB NOT NULL REFERENCES hcp (hcp_id),
    name_en      TEXT NOT NULL,
    name_zh      TEXT NOT NULL,
    room_floor   TEXT,
    building     TEXT,
    street       TEXT NOT NULL,
    district     TEXT NOT NULL,
    phone        TEXT NOT NULL,
    qr_token     TEXT NOT NULL UNIQUE,      -- stable random payload of the location's QR code
    created_at   TEXT NOT NULL
) STRICT;

CREATE INDEX hcp_location_hcp ON hcp_location (hcp_id);
CREATE INDEX hcp_location_district ON hcp_location (district);
