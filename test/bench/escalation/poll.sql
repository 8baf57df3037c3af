-- test/bench/escalation/poll.sql -- an outbox reader that watches
-- escalations become visible: every :poll_ms it takes the outbox rows
-- committed since its last look and records, in public.bench_seen, each
-- escalation of phase :'tag' with the time it first saw it.  seen_at - the
-- escalated notification's deadline is the lag as the delivery side
-- experiences it (commit included, at most :poll_ms late); the children's
-- created_at, by contrast, is stamped inside the sweep, before its commit.
-- Stops once :expected rows of the phase are seen, or after :timeout_s s.
--
-- During the benchmark only the scheduler writes outbox rows (the
-- notifications are opened directly, without outbox rows; the pgbench edges
-- notify nobody), one transaction after another from its own cached
-- sequence range, so "id > last seen" never skips a row; the outbox's
-- partial index on undelivered ids makes each look cheap.  Each look
-- commits (no long-lived snapshot).  Start it before the phase opens its
-- notifications.
--
-- psql variables: tag, expected, poll_ms, timeout_s (handed to the DO block
-- as settings: psql does not interpolate inside dollar quotes).
SET bench.tag = :'tag';
SET bench.expected = :'expected';
SET bench.poll_ms = :'poll_ms';
SET bench.timeout_s = :'timeout_s';
DO $poll$
DECLARE
    tag_    text := current_setting('bench.tag');
    want    bigint := current_setting('bench.expected')::bigint;
    nap     float8 := current_setting('bench.poll_ms')::float8 / 1000.0;
    stop_at timestamptz := clock_timestamp()
                           + make_interval(secs => current_setting('bench.timeout_s')::float8);
    hi      bigint;
    seen    bigint := 0;
    m       bigint;
    k       bigint;
BEGIN
    SELECT coalesce(max(id), 0) INTO hi FROM order_flow.outbox;
    COMMIT;
    WHILE seen < want AND clock_timestamp() < stop_at LOOP
        WITH new AS (
            SELECT id, payload
              FROM order_flow.outbox
             WHERE id > hi AND delivered_at IS NULL
        ), ins AS (
            INSERT INTO public.bench_seen (id, parent_id, seen_at)
            SELECT (payload->>'notification_id')::bigint, (payload->>'escalated_from')::bigint,
                   clock_timestamp()
              FROM new
             WHERE payload->>'bench_phase' = tag_ AND payload ? 'escalated_from'
            ON CONFLICT DO NOTHING
            RETURNING 1
        )
        SELECT max(id), (SELECT count(*) FROM ins) INTO m, k FROM new;
        hi := greatest(hi, coalesce(m, hi));
        seen := seen + k;
        COMMIT;
        PERFORM pg_sleep(nap);
    END LOOP;
END
$poll$;
