-- Nothing on SQLite: migration 25 holds what several server processes share over PostgreSQL
-- (ADR 0024); one process serves a SQLite file. The version exists on both backends so that
-- their lists stay the same.
SELECT 1;
