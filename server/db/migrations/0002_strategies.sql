-- Saved strategies: a strategy object (seed 001's format or the v2 extension of it) with
-- optional defaults (asset, execution settings). Deleting only marks a row: runs that used it
-- keep pointing at it, and a deleted strategy starts no new run.
CREATE TABLE strategies (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users(id),
    name              text NOT NULL,
    description       text,
    dialect           text NOT NULL CHECK (dialect IN ('v2', 'seed001')),
    definition        jsonb NOT NULL,
    asset             text,
    execution_config  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deleted_at        timestamptz
);
CREATE INDEX strategies_user_created ON strategies (user_id, created_at DESC, id DESC);
