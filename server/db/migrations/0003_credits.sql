-- Optional per-user credits (seed 003): NULL is unlimited, the default; a balance is metered.
-- Every change is a ledger row: a grant, a set (NULL balance: back to unlimited), or a run's
-- charge, written in the transaction that creates the run (one charge per run at most).
ALTER TABLE users ADD COLUMN credits numeric CHECK (credits IS NULL OR credits >= 0);

CREATE TABLE credit_ledger (
    id             bigserial PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users(id),
    kind           text NOT NULL CHECK (kind IN ('grant', 'set', 'run')),
    amount         numeric,   -- grant: credits added; set: the new balance; run: credits charged
    balance_after  numeric,   -- NULL: unlimited
    run_id         uuid UNIQUE REFERENCES runs(id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'run') = (run_id IS NOT NULL))
);
CREATE INDEX credit_ledger_user ON credit_ledger (user_id, id);
