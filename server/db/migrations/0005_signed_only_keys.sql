-- A key may be limited to signed requests (seed 004): it then authenticates nothing by itself.
ALTER TABLE api_keys ADD COLUMN signed_only boolean NOT NULL DEFAULT false;
