-- Staff named on a provider's application (form part 5): user administrators, professionals
-- with their registration numbers, registration staff. Professionals who agree are listed in
-- the public directory under their provider.
CREATE TABLE hcp_staff (
    staff_id     BLOB PRIMARY KEY NOT NULL,
    hcp_id       BLOB NOT NULL REFERENCES hcp (hcp_id),
    name_en      TEXT NOT NULL,
    name_zh      TEXT,
    position     TEXT,
    role         TEXT NOT NULL,
    prof_reg_no  TEXT,
    mobile       TEXT NOT NULL,
    listed       INTEGER NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;

CREATE INDEX hcp_staff_hcp ON hcp_staff (hcp_id);
CREATE INDEX hcp_staff_listed_role ON hcp_staff (role, hcp_id) WHERE listed;
