/*
 * src/sql/updates/1.1--1.2.post.sql
 *
 * 1.1 -> 1.2, after the idempotent sources: the fold's watermarks start
 * at what 1.1 already folded; tables managed before 1.2 get the DELETE
 * and TRUNCATE triggers; every backend re-reads its catalogue cache.
 */

/* 1.1's trigger folded every event written so far. */
INSERT INTO order_flow.metrics_watermark (order_key, folded_seq)
SELECT e.order_key, max(e.seq) FROM order_flow.audit_log e
 WHERE NOT starts_with(e.order_key, 'order_flow:') AND e.seq IS NOT NULL
 GROUP BY e.order_key;

/* Tables managed before 1.2 get the DELETE and TRUNCATE triggers. */
DO $upgrade$
DECLARE
    m record;
    args text;
BEGIN
    FOR m IN SELECT mt.relid, mt.key_column, mt.status_column, t.tgargs, t.tgnargs
               FROM order_flow.managed_table mt
               JOIN pg_catalog.pg_trigger t ON t.tgrelid = mt.relid
                                           AND t.tgname = 'order_flow_transition'
    LOOP
        SELECT string_agg(quote_literal(a), ', ' ORDER BY n) INTO args
          FROM unnest(string_to_array(rtrim(encode(m.tgargs, 'escape'), E'\\000'), E'\\000'))
               WITH ORDINALITY x(a, n);
        PERFORM _order_flow._attach_triggers(m.relid, m.key_column, m.status_column, args);
    END LOOP;
END
$upgrade$;

/* Every backend re-reads its catalogue cache (which notes the new fold). */
UPDATE order_flow.workflow SET workflow = workflow WHERE false;
