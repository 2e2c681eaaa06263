-- Facts about this database itself. `instance_id` names the database so that files kept
-- outside it (signed audit checkpoints) can tell which database they belong to.
CREATE TABLE ehrshare_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

INSERT INTO ehrshare_meta (key, value) VALUES ('instance_id', replace(gen_random_uuid()::text, '-', ''));
