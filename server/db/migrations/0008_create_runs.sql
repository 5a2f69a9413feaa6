-- Creating runs is one statement: the user's row lock, the active-run counts, the credit check,
-- the runs, their first events, the charges and the NOTIFYs. The lock is held only while
-- PostgreSQL runs it and commits, never across client round trips, and creates that arrive
-- together are written by one call (one commit, one WAL flush), so one user's submissions do not
-- queue behind each other's commits. Each statement of a plpgsql function takes a new snapshot
-- (READ COMMITTED), so the counts taken after the lock see every run committed by a create that
-- held it before. Every config of a call has the same surface. One row per item, in order:
-- 'created' (with the run's created_at and stored config: the rest of a new run's row is the
-- table's defaults), or a refusal ('too_many' with the count, 'credits' with the balance) that
-- stores nothing for that item.
DROP FUNCTION IF EXISTS barstream_create_runs(
    uuid, uuid[], jsonb, text[], bigint, bigint, numeric, jsonb, timestamptz, jsonb, text);
CREATE FUNCTION barstream_create_runs(
    p_user uuid, p_ids uuid[], p_configs jsonb, p_short_ids text[], p_max_active bigint,
    p_max_surface bigint, p_cost numeric, p_charged jsonb, p_ts timestamptz, p_event jsonb,
    p_channel text
) RETURNS TABLE (ord integer, outcome text, detail text, run_created_at timestamptz,
    run_config jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_credits numeric;
    v_metered boolean;
    v_active bigint;
    v_same bigint := 0;
BEGIN
    SELECT credits INTO v_credits FROM users WHERE id = p_user FOR UPDATE;
    v_metered := v_credits IS NOT NULL;
    -- Counting stops at the limit: a user's thousands of queued runs are not all visited.
    SELECT count(*) INTO v_active FROM (
        SELECT 1 FROM runs WHERE user_id = p_user AND state IN ('queued', 'running')
        LIMIT p_max_active) a;
    IF p_max_surface IS NOT NULL THEN
        SELECT count(*) INTO v_same FROM (
            SELECT 1 FROM runs WHERE user_id = p_user AND state IN ('queued', 'running')
            AND config->>'surface' = p_configs->0->>'surface' LIMIT p_max_surface) s;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
        ord := i;
        detail := NULL;
        run_created_at := NULL;
        run_config := NULL;
        IF v_active >= p_max_active THEN
            outcome := 'too_many';
            detail := v_active::text;
        ELSIF p_max_surface IS NOT NULL AND v_same >= p_max_surface THEN
            outcome := 'too_many';
            detail := v_same::text;
        ELSIF v_metered AND v_credits < p_cost THEN
            outcome := 'credits';
            detail := v_credits::text;
        ELSE
            INSERT INTO runs (id, user_id, state, config, short_id, last_event_id)
                VALUES (p_ids[i], p_user, 'queued', (p_configs->(i - 1)) || jsonb_build_object(
                    'credits', jsonb_build_object('metered', v_metered, 'charged',
                        CASE WHEN v_metered THEN p_charged ELSE '0.0'::jsonb END)),
                    p_short_ids[i], 1)
                RETURNING runs.created_at, runs.config INTO run_created_at, run_config;
            INSERT INTO events (run_id, id, type, ts, data)
                VALUES (p_ids[i], 1, 'state', p_ts, p_event);
            IF v_metered THEN
                v_credits := v_credits - p_cost;
                INSERT INTO credit_ledger (user_id, kind, amount, balance_after, run_id)
                    VALUES (p_user, 'run', p_cost, v_credits, p_ids[i]);
            END IF;
            PERFORM pg_notify(p_channel, p_ids[i]::text || ':1');
            v_active := v_active + 1;
            v_same := v_same + 1;
            outcome := 'created';
        END IF;
        RETURN NEXT;
    END LOOP;
    IF v_metered THEN
        UPDATE users SET credits = v_credits WHERE id = p_user AND credits <> v_credits;
    END IF;
END
$$;
