-- Nothing on SQLite: migration 24 is PostgreSQL's audit batch function (ADR 0022); SQLite's
-- writer runs its common batch in place (ADR 0005). The version exists on both backends so
-- that their lists stay the same.
SELECT 1;
