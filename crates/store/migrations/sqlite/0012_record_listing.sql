-- A summary lists a recipient's current records with their metadata and bodies. The index
-- already found them in the order they are answered (0011); with every listed column in it
-- too, SQLite answers from the index alone and never looks a row up in the table: one walk
-- along a few adjacent index pages instead of a descent from the table's root for each of
-- about fifty records, which was a tenth of a summary's instructions (docs/PERFORMANCE.md,
-- eighth session; docs/adr/0006).
--
-- The cost is disk: each current body is stored once more, in the index (it is already in
-- `record` and `record_version`), and written once more on deposit and amendment. A body
-- longer than about 1 KB (SQLite's local payload of an index cell on a 4 KiB page) continues
-- on overflow pages, as it does in the table past about 4 KB. PostgreSQL keeps its index
-- (0011): a B-tree entry there may not exceed about 2.7 KB, so a large body would refuse the
-- deposit.
DROP INDEX record_recipient_domain;
CREATE INDEX record_recipient_domain ON record (
    recipient_id, status, domain, created_at, record_id,
    resource_type, source_hcp, version, updated_at, body
);
