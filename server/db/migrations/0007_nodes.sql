-- Several nodes: the node that claimed a run last, and the shards of large sweeps.
ALTER TABLE runs ADD COLUMN node text;

-- A shard runs the sweep's variants [lo, hi) (numbers lo+1 .. hi) of its parent run. Any node
-- claims it with the same SKIP LOCKED + lease rules as a run; the parent's runner (which holds
-- no worker) aggregates the shards' progress into the parent's events and merges their rows.
CREATE TABLE sweep_shards (
    id                uuid PRIMARY KEY,
    run_id            uuid NOT NULL REFERENCES runs(id),
    number            integer NOT NULL,
    lo                integer NOT NULL,
    hi                integer NOT NULL CHECK (0 <= lo AND lo < hi),
    state             text NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued','running','completed','failed','cancelled')),
    progress          double precision NOT NULL DEFAULT 0,
    attempts          integer NOT NULL DEFAULT 0,
    stopped_cleanly   boolean NOT NULL DEFAULT false,
    cancel_requested  boolean NOT NULL DEFAULT false,
    lease_owner       text,
    lease_expires_at  timestamptz,
    node              text,
    body              jsonb,
    error             jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    UNIQUE (run_id, number)
);
CREATE INDEX sweep_shards_pending ON sweep_shards (created_at) WHERE state IN ('queued', 'running');
