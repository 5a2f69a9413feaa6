CREATE TABLE users (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id),
    prefix      text NOT NULL UNIQUE,
    key_hash    bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE runs (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users(id),
    state             text NOT NULL CHECK (state IN ('queued','running','completed','failed','cancelled')),
    progress          double precision NOT NULL DEFAULT 0,
    config            jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    error             jsonb,
    archived          boolean NOT NULL DEFAULT false,
    archived_at       timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    attempts          integer NOT NULL DEFAULT 0,
    last_event_id     bigint NOT NULL DEFAULT 0,
    lease_owner       text,
    lease_expires_at  timestamptz
);
CREATE INDEX runs_user_created ON runs (user_id, created_at DESC, id DESC);
CREATE INDEX runs_pending ON runs (created_at) WHERE state IN ('queued', 'running');

CREATE TABLE results (
    run_id      uuid PRIMARY KEY REFERENCES runs(id),
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
    run_id  uuid NOT NULL REFERENCES runs(id),
    id      bigint NOT NULL,
    type    text NOT NULL CHECK (type IN ('state','progress','metric','log')),
    ts      timestamptz NOT NULL,
    data    jsonb NOT NULL,
    PRIMARY KEY (run_id, id)
);
