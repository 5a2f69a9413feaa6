-- A run its server gave back on a graceful stop: the next claim does not count an attempt.
ALTER TABLE runs ADD COLUMN stopped_cleanly boolean NOT NULL DEFAULT false;
