-- Several server processes over one database (ADR 0024): the request rate limit's buckets,
-- shared by the processes, and the processes alive (each counts them to take its share).
-- Unlogged: a crash forgets them, as a restart of a single process forgets its buckets.
CREATE UNLOGGED TABLE rate_bucket (
    key TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    -- seconds since 1970, by the database's clock (the hosts' clocks may differ)
    at DOUBLE PRECISION NOT NULL,
    -- the tokens the last reservation took (a process admits that many on its own)
    granted DOUBLE PRECISION NOT NULL
);

-- what is forgotten, once a minute
CREATE INDEX rate_bucket_at ON rate_bucket (at);

CREATE UNLOGGED TABLE server_process (
    id UUID PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);
