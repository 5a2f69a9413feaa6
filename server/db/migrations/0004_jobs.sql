-- Seed 004 (template jobs): a short job id beside the run's UUID, saved job configs as
-- strategies, the secret signing keys derive from, and seen signatures (replay guard).
ALTER TABLE runs ADD COLUMN short_id text;
CREATE UNIQUE INDEX runs_short_id ON runs (short_id) WHERE short_id IS NOT NULL;
CREATE INDEX runs_user_surface ON runs (user_id, ((config->>'surface')), created_at DESC, id DESC);

ALTER TABLE strategies DROP CONSTRAINT strategies_dialect_check;
ALTER TABLE strategies ADD CONSTRAINT strategies_dialect_check
    CHECK (dialect IN ('v2', 'seed001', 'job'));

CREATE TABLE server_secrets (
    name        text PRIMARY KEY,
    value       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE signed_requests (
    signature   text PRIMARY KEY,
    seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX signed_requests_seen ON signed_requests (seen_at);
