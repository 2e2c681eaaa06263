-- A record is identified at its source by (provider, resource type, FHIR id): a FHIR id is
-- unique only within its resource type, and Observation/x then Condition/x made the second
-- a new version of the first (issue 23). The key kept in `source_id` is now `Type/id`, so
-- that the existing unique (source_hcp, source_id) is the right one on both backends (SQLite
-- cannot change a table's constraint in place).
UPDATE record SET source_id = resource_type || '/' || source_id WHERE source_id NOT LIKE '%/%';
