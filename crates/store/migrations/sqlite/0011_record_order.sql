-- A summary reads a recipient's current records in some domains, by domain and oldest first
-- in each. With the status, the domain, the time and the id in the index, in that order, the
-- database walks the index in the order it answers: no sort of the rows (bodies and all) per
-- read, which was a large part of a summary's cost (docs/PERFORMANCE.md, sixth session).
DROP INDEX record_recipient_domain;
CREATE INDEX record_recipient_domain ON record (recipient_id, status, domain, created_at, record_id);
