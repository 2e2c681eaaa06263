-- SQLite's 0012 puts every listed column of a record, the body included, in the index a
-- summary walks, so that it never reads the table. PostgreSQL keeps 0011's index: a B-tree
-- entry there may not exceed about 2.7 KB, so a large body in the index would refuse the
-- deposit (docs/adr/0006). This migration keeps the two backends' lists alike and changes
-- nothing.
SELECT 1;
