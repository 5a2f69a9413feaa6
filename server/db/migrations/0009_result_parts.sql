-- A run's long listings (its round trips and its fills, `trades`) leave the results body: each is
-- stored as pages of PAGE_ROWS rows (server/stored_results.py), a page's rows as their JSON
-- objects each followed by a comma (`data`) and the offset just past each row's comma (`ends`,
-- big-endian int32), so a page of any size is served by slicing and joining stored bytes, and a
-- 10,000-trade run is written with one COPY. The body keeps the rest (metrics, curves, sweep).
CREATE TABLE result_parts (
    run_id  uuid NOT NULL REFERENCES results(run_id),
    kind    text NOT NULL CHECK (kind IN ('round_trips', 'trades')),
    page    integer NOT NULL CHECK (page >= 0),
    rows    integer NOT NULL CHECK (rows > 0),
    data    bytea NOT NULL,
    ends    bytea NOT NULL,
    PRIMARY KEY (run_id, kind, page)
);
-- Stored uncompressed: pglz took four fifths of the write of a 20,000-fill run (208 ms against
-- 44 ms for the COPY on this machine), for JSON text that is served as it is.
ALTER TABLE result_parts ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE result_parts ALTER COLUMN ends SET STORAGE EXTERNAL;

-- Results stored before: their listings move into parts, 500 rows a page, in order.
INSERT INTO result_parts (run_id, kind, page, rows, data, ends)
SELECT run_id, kind, page::integer, count(*)::integer,
       string_agg(row_bytes, ''::bytea ORDER BY ord),
       string_agg(int4send(end_at::integer), ''::bytea ORDER BY ord)
FROM (
    SELECT r.run_id, k.kind, (e.ord - 1) / 500 AS page, e.ord,
           convert_to(e.value::text || ',', 'UTF8') AS row_bytes,
           sum(octet_length(convert_to(e.value::text || ',', 'UTF8'))) OVER (
               PARTITION BY r.run_id, k.kind, (e.ord - 1) / 500 ORDER BY e.ord
           ) AS end_at
    FROM results r
    CROSS JOIN (VALUES ('round_trips'), ('trades')) AS k (kind)
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(r.body -> k.kind) = 'array' THEN r.body -> k.kind
             ELSE '[]'::jsonb END
    ) WITH ORDINALITY AS e (value, ord)
) AS listed
GROUP BY run_id, kind, page;

UPDATE results SET body = body - 'round_trips' - 'trades'
WHERE body ? 'round_trips' OR body ? 'trades';
