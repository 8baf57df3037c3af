/*
 * order_flow 1.1 -> 1.2
 *
 * Applied by ALTER EXTENSION order_flow UPDATE; CREATE EXTENSION installs
 * 1.0 and applies every update, so a fresh 1.2 and an updated 1.0 or 1.1
 * are the same.
 *
 *   - the chain is the truth: a move whose start differs from the order's
 *     chain is refused (order_flow_chain_drift) until repair_drift()
 *     records the drift; verify_audit() checks state continuity, the
 *     chain heads' states and managed rows against their chains;
 *   - witness checkpoints: audit_checkpoint() and verify_audit(checkpoint);
 *   - DELETE of a managed order appends a 'deleted' event, closes its open
 *     notifications and stops its reminders; its key cannot be reused;
 *     TRUNCATE of a managed table is refused;
 *   - manage(), repair_drift() and verify_audit() read managed rows as the
 *     table's owner (SECURITY_RESTRICTED_OPERATION), never as the caller;
 *     re-adopting an order whose row moved while unmanaged records a drift;
 *   - acknowledge() is no longer executable by PUBLIC;
 *   - the metrics rollup is folded off the transition path: by the
 *     scheduler within about a second of commit, exact through a per-order
 *     watermark (metrics_watermark, fold_progress, metrics_fold(),
 *     metrics_lag(); setting order_flow.metrics_fold);
 *   - non-finite times are refused by escalate_due() and logistics_update()
 *     (import_transition() refuses them in the library); the metrics views
 *     ignore non-finite times already stored.
 */

\echo Use "ALTER EXTENSION order_flow UPDATE TO '1.2'" to load this file. \quit

/* ------------------------------------------------------------------ */
/* Reading users' tables with their owner's rights.                    */
/* ------------------------------------------------------------------ */

CREATE FUNCTION order_flow._read_as_owner(tbl regclass, key_column name, status_column name,
                                          customer_column name DEFAULT NULL, attributes name[] DEFAULT '{}',
                                          only_key text DEFAULT NULL)
    RETURNS TABLE (k text, s text, c text, a jsonb)
    AS 'MODULE_PATHNAME', 'order_flow_read_as_owner' LANGUAGE C;
REVOKE ALL ON FUNCTION order_flow._read_as_owner(regclass, name, name, name, name[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION order_flow._read_as_owner(regclass, name, name, name, name[], text) TO order_flow_admin;
COMMENT ON FUNCTION order_flow._read_as_owner(regclass, name, name, name, name[], text) IS
    'Internal: a managed table''s key, status, customer and attributes as text, read as the table''s owner under SECURITY_RESTRICTED_OPERATION (the caller needs SELECT on it)';

/* ------------------------------------------------------------------ */
/* Notifications of deleted orders are closed.                         */
/* ------------------------------------------------------------------ */

ALTER TABLE order_flow.notification DROP CONSTRAINT notification_status_check;
ALTER TABLE order_flow.notification ADD CONSTRAINT notification_status_check
    CHECK (status IN ('pending', 'acknowledged', 'need_info', 'escalated', 'closed'));
COMMENT ON COLUMN order_flow.notification.status IS
    'pending, acknowledged, need_info, escalated, or closed (the order was deleted)';

/* ------------------------------------------------------------------ */
/* Attaching tables: user code runs as the table's owner.              */
/* ------------------------------------------------------------------ */

/* TRUNCATE of a managed table would orphan its tracked orders. */
CREATE FUNCTION order_flow._refuse_truncate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'cannot truncate %: it is managed by order_flow', TG_TABLE_NAME::text
        USING ERRCODE = '55000', CONSTRAINT = 'order_flow_no_truncate',
              SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
              DETAIL = 'Deleting orders is recorded per order in the audit log; TRUNCATE would leave their chains without a trace.',
              HINT = 'DELETE the orders, or call order_flow.unmanage() first.';
END
$$;
COMMENT ON FUNCTION order_flow._refuse_truncate() IS
    'Internal: BEFORE TRUNCATE trigger of managed tables';
REVOKE ALL ON FUNCTION order_flow._refuse_truncate() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION order_flow._refuse_truncate() TO order_flow_admin;

/* The triggers manage() attaches, with the transition trigger's arguments. */
CREATE FUNCTION order_flow._attach_triggers(tbl regclass, key_column name, status_column name,
                                            args text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
BEGIN
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_transition ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_no_truncate ON %s', tbl);
    EXECUTE format('CREATE TRIGGER order_flow_transition BEFORE INSERT OR UPDATE OF %I, %I OR DELETE ON %s
                    FOR EACH ROW EXECUTE FUNCTION order_flow._transition_trigger(%s)',
                   key_column, status_column, tbl, args);
    EXECUTE format('CREATE TRIGGER order_flow_no_truncate BEFORE TRUNCATE ON %s
                    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._refuse_truncate()', tbl);
END
$$;
REVOKE ALL ON FUNCTION order_flow._attach_triggers(regclass, name, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION order_flow._attach_triggers(regclass, name, name, text) TO order_flow_admin;

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
        PERFORM order_flow._attach_triggers(m.relid, m.key_column, m.status_column, args);
    END LOOP;
END
$upgrade$;

CREATE OR REPLACE FUNCTION order_flow.manage(tbl regclass,
                                  key_column name DEFAULT 'id',
                                  status_column name DEFAULT 'status',
                                  workflow text DEFAULT 'b2b_order',
                                  customer_column name DEFAULT NULL,
                                  attributes name[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    rel         record;
    tblname     text;
    key_att     smallint;
    st_att      smallint;
    st_type     oid;
    c           name;
    bad         text;
    n           bigint;
    args        text;
    d           record;
BEGIN
    IF tbl IS NULL OR key_column IS NULL OR status_column IS NULL OR workflow IS NULL
       OR attributes IS NULL THEN
        RAISE EXCEPTION 'manage() arguments must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT c2.oid, c2.relkind, n2.nspname, c2.relname INTO rel
      FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
     WHERE c2.oid = tbl;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
    END IF;
    IF rel.nspname = 'order_flow' THEN
        RAISE EXCEPTION 'cannot manage the extension''s own table %', tbl USING ERRCODE = '42809';
    END IF;
    tblname := format('%I.%I', rel.nspname, rel.relname);
    IF EXISTS (SELECT 1 FROM order_flow.managed_table m WHERE m.relid = tbl) THEN
        RAISE EXCEPTION 'table % is already managed', tbl USING ERRCODE = '42710',
            HINT = 'Call order_flow.unmanage() first to attach it again.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.workflow w WHERE w.workflow = manage.workflow) THEN
        RAISE EXCEPTION 'workflow "%" does not exist', workflow USING ERRCODE = '42704';
    END IF;

    FOREACH c IN ARRAY ARRAY[key_column, status_column]
                       || CASE WHEN customer_column IS NULL THEN '{}'::name[] ELSE ARRAY[customer_column] END
                       || attributes
    LOOP
        IF c IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute
                                     WHERE attrelid = tbl AND attname = c
                                       AND attnum > 0 AND NOT attisdropped) THEN
            RAISE EXCEPTION 'column "%" of table % does not exist', c, tbl USING ERRCODE = '42703';
        END IF;
    END LOOP;
    SELECT attnum INTO key_att FROM pg_attribute WHERE attrelid = tbl AND attname = key_column;
    SELECT attnum, atttypid INTO st_att, st_type FROM pg_attribute
     WHERE attrelid = tbl AND attname = status_column;

    IF NOT EXISTS (SELECT 1 FROM pg_index i
                    WHERE i.indrelid = tbl AND i.indisunique AND i.indnatts = 1
                      AND i.indkey[0] = key_att AND i.indpred IS NULL AND i.indexprs IS NULL) THEN
        RAISE EXCEPTION 'key column "%" of table % has no primary key or unique constraint of its own',
            key_column, tbl USING ERRCODE = '42P10',
            HINT = 'Order keys must identify an order: add a PRIMARY KEY or UNIQUE constraint on it.';
    END IF;
    IF NOT (st_type IN ('order_flow.status'::regtype, 'text'::regtype, 'varchar'::regtype)
            OR EXISTS (SELECT 1 FROM pg_type WHERE oid = st_type AND typtype = 'e')) THEN
        RAISE EXCEPTION 'status column "%" has type %, not order_flow.status, text, varchar or an enum',
            status_column, st_type::regtype USING ERRCODE = '42804';
    END IF;

    /*
     * The table's rows as text: key, status, customer, attributes.  Casts
     * and output functions of the owner's column types are the owner's
     * code, so the rows are read as the owner (restricted), never as the
     * caller, who may be a superuser.
     */
    CREATE TEMPORARY TABLE IF NOT EXISTS order_flow_manage_rows
        (k text, s text, c text, a jsonb) ON COMMIT DROP;
    TRUNCATE order_flow_manage_rows;
    INSERT INTO order_flow_manage_rows
    SELECT * FROM order_flow._read_as_owner(tbl, key_column, status_column, customer_column, attributes);

    -- existing rows must be in known states of the workflow
    SELECT count(*) INTO n FROM order_flow_manage_rows x WHERE x.s IS NULL;
    IF n > 0 THEN
        RAISE EXCEPTION 'table % has % rows with a NULL status', tbl, n USING ERRCODE = '23502';
    END IF;
    SELECT string_agg(DISTINCT x.s, ', ' ORDER BY x.s) INTO bad FROM order_flow_manage_rows x
     WHERE NOT EXISTS (SELECT 1 FROM order_flow.state st WHERE st.workflow = manage.workflow AND st.state = x.s);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has rows in states unknown to workflow "%"', tbl, workflow
            USING ERRCODE = '23514', DETAIL = 'Unknown states: ' || bad || '.';
    END IF;

    -- order keys identify an order across the database
    SELECT string_agg(k, ', ') INTO bad
      FROM (SELECT x.k FROM order_flow_manage_rows x WHERE x.k LIKE 'order_flow:%' LIMIT 5) y;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has reserved order keys', tbl USING ERRCODE = '23505',
            DETAIL = 'Keys beginning with "order_flow:" name the extension''s own audit chains: ' || bad || '.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad
      FROM (SELECT x.k FROM order_flow_manage_rows x
              JOIN order_flow.tracked_order o ON o.order_key = x.k
             WHERE o.tbl IS DISTINCT FROM tblname LIMIT 5) y;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'order keys of table % collide with orders already tracked', tbl
            USING ERRCODE = '23505', DETAIL = 'Colliding keys include: ' || bad || '.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad
      FROM (SELECT x.k FROM order_flow_manage_rows x
              JOIN order_flow.tracked_order o ON o.order_key = x.k
             WHERE o.tbl = tblname AND o.state IS NULL AND o.last_seq > 0 LIMIT 5) y;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has rows whose orders were deleted', tbl
            USING ERRCODE = '23505', CONSTRAINT = 'order_flow_key_deleted',
                  DETAIL = 'Keys of deleted orders include: ' || bad || '.',
                  HINT = 'Give these orders new keys.';
    END IF;

    INSERT INTO order_flow.managed_table (relid, tbl, key_column, status_column, workflow,
                                          customer_column, attributes)
    VALUES (tbl, tblname, key_column, status_column, workflow, customer_column, attributes);

    /*
     * Rows that moved while the table was not managed: the chain records
     * the drift before the row is adopted in its new state, so the chain
     * stays continuous.
     */
    FOR d IN SELECT x.k, o.state AS was, x.s AS now_
               FROM order_flow_manage_rows x
               JOIN order_flow.tracked_order o ON o.order_key = x.k
              WHERE o.tbl = tblname AND o.last_seq > 0 AND o.state IS DISTINCT FROM x.s
              ORDER BY x.k
    LOOP
        PERFORM order_flow._append_event(d.k, 'drift', d.was, d.now_,
            jsonb_build_object('table', tblname, 'note', 'adopted by manage() in a state its chain did not record'),
            NULL);
    END LOOP;

    -- adopt existing rows in their current state: not an event
    INSERT INTO order_flow.tracked_order AS o (order_key, tbl, workflow, state, entered_at,
                                               adopted_at, customer_key, attributes, stale_after)
    SELECT x.k, tblname, workflow, x.s, now(), now(), x.c, x.a,
           (SELECT now() + st.max_dwell * p.factor
              FROM order_flow.state st
              JOIN order_flow.reminder_policy p ON p.workflow = st.workflow AND p.level = 1
             WHERE st.workflow = manage.workflow AND st.state = x.s AND st.category <> 'terminal')
      FROM order_flow_manage_rows x
    ON CONFLICT (order_key) DO UPDATE
       SET state = excluded.state, workflow = excluded.workflow, adopted_at = excluded.adopted_at,
           entered_at = excluded.entered_at, reminder_level = 0, stale_after = excluded.stale_after,
           customer_key = excluded.customer_key, attributes = excluded.attributes;
    DROP TABLE order_flow_manage_rows;

    SELECT string_agg(quote_literal(a), ', ') INTO args
      FROM unnest(ARRAY[tblname, workflow, key_column::text, status_column::text,
                        coalesce(customer_column::text, '')] || attributes::text[]) a;
    PERFORM order_flow._attach_triggers(tbl, key_column, status_column, args);
END
$$;

CREATE OR REPLACE FUNCTION order_flow.unmanage(tbl regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.managed_table m WHERE m.relid = tbl) THEN
        RAISE EXCEPTION 'table % is not managed', tbl USING ERRCODE = '42704';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_transition ON %s', tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS order_flow_no_truncate ON %s', tbl);
    DELETE FROM order_flow.managed_table m WHERE m.relid = tbl;
END
$$;

/* ------------------------------------------------------------------ */
/* The chain is the truth: drift repair and verification.              */
/* ------------------------------------------------------------------ */

/*
 * repair_drift(tbl, order_key, note): a row whose status was changed while
 * the trigger was not running is accepted as it is, and the chain records
 * the drift (from the chain's state to the row's), with the note and the
 * acting person.  Administrators only.
 */
CREATE FUNCTION order_flow.repair_drift(tbl regclass, order_key text, note text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
    row_state text;
    chain record;
    id_ bigint;
BEGIN
    IF tbl IS NULL OR order_key IS NULL THEN
        RAISE EXCEPTION 'table and order key must not be null' USING ERRCODE = '22004';
    END IF;
    IF coalesce(btrim(note), '') = '' THEN
        RAISE EXCEPTION 'repairing a drift requires a note' USING ERRCODE = '23514',
            CONSTRAINT = 'order_flow_reason_required';
    END IF;
    IF NOT order_flow.is_admin() THEN
        RAISE EXCEPTION 'only order_flow administrators may repair a drift' USING ERRCODE = '42501',
            CONSTRAINT = 'order_flow_not_authorised';
    END IF;
    SELECT * INTO m FROM order_flow.managed_table mt WHERE mt.relid = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not managed by order_flow', tbl USING ERRCODE = '42704';
    END IF;
    SELECT * INTO chain FROM order_flow.tracked_order t
     WHERE t.order_key = repair_drift.order_key AND t.tbl = m.tbl FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % of % is not tracked', order_key, tbl USING ERRCODE = 'P0002';
    END IF;
    SELECT x.s INTO row_state
      FROM order_flow._read_as_owner(tbl, m.key_column, m.status_column, NULL, '{}', order_key) x
     WHERE x.k = order_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found in %', order_key, tbl USING ERRCODE = 'P0002';
    END IF;
    IF row_state IS NOT DISTINCT FROM chain.state THEN
        RAISE EXCEPTION 'order % has not drifted: its row and its chain agree on "%"', order_key, row_state
            USING ERRCODE = '55000', CONSTRAINT = 'order_flow_no_drift';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.state s WHERE s.workflow = m.workflow AND s.state = row_state) THEN
        RAISE EXCEPTION '"%" is not a state of workflow "%"', row_state, m.workflow USING ERRCODE = '22P02',
            CONSTRAINT = 'order_flow_unknown_state';
    END IF;
    id_ := order_flow._append_event(order_key, 'drift', chain.state, row_state,
                                    jsonb_build_object('table', m.tbl, 'note', note), NULL);
    UPDATE order_flow.tracked_order t
       SET state = row_state, held_from = NULL, entered_at = now(), reminder_level = 0,
           stale_after = (SELECT now() + st.max_dwell * p.factor
                            FROM order_flow.state st
                            JOIN order_flow.reminder_policy p ON p.workflow = st.workflow AND p.level = 1
                           WHERE st.workflow = m.workflow AND st.state = row_state
                             AND st.category <> 'terminal')
     WHERE t.order_key = repair_drift.order_key;
    RETURN id_;
END
$$;
COMMENT ON FUNCTION order_flow.repair_drift(regclass, text, text) IS
    'Accept a managed row''s status changed behind the trigger''s back, recording a drift event in its chain (administrators)';

/* The walk over the chains (C); verify_audit() adds the managed rows. */
CREATE FUNCTION order_flow._verify_chains(order_key text)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
    AS 'MODULE_PATHNAME', 'order_flow_verify_audit'
    LANGUAGE C STABLE;
REVOKE ALL ON FUNCTION order_flow._verify_chains(text) FROM PUBLIC;

/* Managed rows whose status differs from their chain (read as each table's owner). */
CREATE FUNCTION order_flow._verify_rows(only_key text)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
BEGIN
    FOR m IN SELECT * FROM order_flow.managed_table mt
              WHERE only_key IS NULL
                 OR mt.tbl = (SELECT t.tbl FROM order_flow.tracked_order t WHERE t.order_key = only_key)
                 OR NOT EXISTS (SELECT FROM order_flow.tracked_order t WHERE t.order_key = only_key)
              ORDER BY tbl LOOP
        RETURN QUERY
        SELECT coalesce(r.k, t.order_key), NULL::bigint,
               CASE WHEN t.order_key IS NULL THEN
                        format('row of %s in state %s has no chain (written while the trigger was not running)',
                               m.tbl, quote_ident(r.s))
                    WHEN r.k IS NULL THEN
                        format('row missing from %s: its chain says %s (deleted while the trigger was not running)',
                               m.tbl, quote_ident(t.state))
                    WHEN t.state IS NULL THEN
                        format('drift: the order was deleted, but %s has a row in state %s', m.tbl, quote_ident(r.s))
                    ELSE format('drift: %s says %s, the chain says %s', m.tbl, quote_ident(r.s), quote_ident(t.state))
               END
          FROM order_flow._read_as_owner(m.relid, m.key_column, m.status_column, NULL, '{}', only_key) r
          /* the chains of this table since it was (last) managed: rows deleted
             while it was not managed, or before a table of the same name was
             dropped, are history, not drift */
          FULL JOIN (SELECT * FROM order_flow.tracked_order o
                      WHERE o.tbl = m.tbl
                        AND greatest(o.adopted_at, o.created_at) >= m.managed_at) t ON t.order_key = r.k
         WHERE (only_key IS NULL OR coalesce(r.k, t.order_key) = only_key)
           AND (r.k IS NULL AND t.state IS NOT NULL
                OR t.order_key IS NULL
                OR r.k IS NOT NULL AND t.state IS DISTINCT FROM r.s)
         ORDER BY 1;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION order_flow._verify_rows(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION order_flow.verify_audit(order_key text DEFAULT NULL)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM order_flow._verify_chains(verify_audit.order_key)
    UNION ALL
    SELECT * FROM order_flow._verify_rows(verify_audit.order_key)
$$;
COMMENT ON FUNCTION order_flow.verify_audit(text) IS
    'One row per problem: a broken link, a bad hash, a state discontinuity, a chain head that differs from its chain, a managed row that drifted from its chain (none = intact)';

/* ------------------------------------------------------------------ */
/* Witness checkpoints.                                                */
/* ------------------------------------------------------------------ */

CREATE TABLE order_flow.audit_checkpoint_head (
    checkpoint_id   bigint NOT NULL,
    order_key       text NOT NULL,
    seq             bigint NOT NULL,
    hash            bytea NOT NULL,
    PRIMARY KEY (checkpoint_id, order_key)
);
COMMENT ON TABLE order_flow.audit_checkpoint_head IS
    'Every chain''s last event at each audit_checkpoint(): where verify_audit(checkpoint) looks for shortened or rewritten chains';
CREATE SEQUENCE order_flow.audit_checkpoint_id_seq;
REVOKE ALL ON order_flow.audit_checkpoint_head, order_flow.audit_checkpoint_id_seq FROM PUBLIC;
GRANT SELECT ON order_flow.audit_checkpoint_head TO order_flow_admin;
SELECT pg_catalog.pg_extension_config_dump('order_flow.audit_checkpoint_head', '');
SELECT pg_catalog.pg_extension_config_dump('order_flow.audit_checkpoint_id_seq', '');

/* The digest over a checkpoint's heads (key, sequence, hash of each, in key order). */
CREATE FUNCTION order_flow._checkpoint_digest(checkpoint_id bigint)
RETURNS TABLE (chains bigint, digest text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*),
           encode(sha256(coalesce(string_agg(convert_to(h.order_key, 'UTF8') || '\x00'::bytea
                                             || int8send(h.seq) || h.hash, ''::bytea
                                             ORDER BY h.order_key), ''::bytea)), 'hex')
      FROM order_flow.audit_checkpoint_head h
     WHERE h.checkpoint_id = _checkpoint_digest.checkpoint_id
$$;
REVOKE ALL ON FUNCTION order_flow._checkpoint_digest(bigint) FROM PUBLIC;

/*
 * audit_checkpoint(): one digest over every chain's last event and the
 * number of events, to be stored outside the database.  The heads are
 * kept in audit_checkpoint_head, so verify_audit(checkpoint) can say which
 * chain was shortened or rewritten since; the digest says whether that
 * table itself was altered.
 */
CREATE FUNCTION order_flow.audit_checkpoint()
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cid bigint := nextval('order_flow.audit_checkpoint_id_seq');
    n bigint;
    dg record;
BEGIN
    INSERT INTO order_flow.audit_checkpoint_head (checkpoint_id, order_key, seq, hash)
    SELECT DISTINCT ON (a.order_key) cid, a.order_key, a.seq, a.hash
      FROM order_flow.audit_log a
     WHERE a.seq IS NOT NULL AND a.hash IS NOT NULL
     ORDER BY a.order_key, a.seq DESC;
    SELECT count(*) INTO n FROM order_flow.audit_log;
    SELECT * INTO dg FROM order_flow._checkpoint_digest(cid);
    RETURN jsonb_build_object('checkpoint', cid, 'taken_at', now(), 'events', n,
                              'chains', dg.chains, 'digest', dg.digest);
END
$$;
COMMENT ON FUNCTION order_flow.audit_checkpoint() IS
    'A witness of the whole audit log (every chain head, the event count) to store outside the database; verify_audit(checkpoint) checks against it';

CREATE FUNCTION order_flow.verify_audit(checkpoint jsonb)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    cid bigint;
    dg record;
    n bigint;
BEGIN
    IF checkpoint IS NULL OR jsonb_typeof(checkpoint) <> 'object'
       OR jsonb_typeof(checkpoint->'checkpoint') <> 'number' OR jsonb_typeof(checkpoint->'digest') <> 'string'
       OR jsonb_typeof(checkpoint->'events') <> 'number' THEN
        RAISE EXCEPTION 'not a checkpoint: %', left(coalesce(checkpoint::text, 'NULL'), 200)
            USING ERRCODE = '22023',
                  HINT = 'Pass the value order_flow.audit_checkpoint() returned, as jsonb.';
    END IF;
    cid := (checkpoint->>'checkpoint')::bigint;
    RETURN QUERY SELECT * FROM order_flow.verify_audit(NULL::text);

    SELECT * INTO dg FROM order_flow._checkpoint_digest(cid);
    IF dg.chains = 0 THEN
        RETURN QUERY SELECT NULL::text, NULL::bigint,
            format('checkpoint %s is not in the database (audit_checkpoint_head was emptied)', cid);
        RETURN;
    END IF;
    IF dg.digest <> checkpoint->>'digest' OR dg.chains <> (checkpoint->>'chains')::bigint THEN
        RETURN QUERY SELECT NULL::text, NULL::bigint,
            format('checkpoint %s: the heads kept in the database do not match the digest given (audit_checkpoint_head was altered)', cid);
    END IF;

    RETURN QUERY
    SELECT h.order_key, a.id,
           CASE WHEN a.id IS NULL
                THEN format('chain shortened since checkpoint %s: event %s, its last then, is gone', cid, h.seq)
                ELSE format('chain rewritten since checkpoint %s: event %s is not the one witnessed', cid, h.seq) END
      FROM order_flow.audit_checkpoint_head h
      LEFT JOIN order_flow.audit_log a ON a.order_key = h.order_key AND a.seq = h.seq
     WHERE h.checkpoint_id = cid
       AND (a.id IS NULL OR a.hash IS DISTINCT FROM h.hash)
     ORDER BY h.order_key;

    SELECT count(*) INTO n
      FROM order_flow.audit_log a
      JOIN order_flow.audit_checkpoint_head h
        ON h.checkpoint_id = cid AND h.order_key = a.order_key AND a.seq <= h.seq;
    IF n <> (checkpoint->>'events')::bigint THEN
        RETURN QUERY SELECT NULL::text, NULL::bigint,
            format('checkpoint %s witnessed %s events; %s of them are in the log now (a whole chain removed, or events inserted before the heads)',
                   cid, checkpoint->>'events', n);
    END IF;
END
$$;
COMMENT ON FUNCTION order_flow.verify_audit(jsonb) IS
    'verify_audit() plus the chains shortened or rewritten since the given checkpoint (from audit_checkpoint())';

/* ------------------------------------------------------------------ */
/* Finite times.                                                       */
/* ------------------------------------------------------------------ */

CREATE OR REPLACE FUNCTION order_flow.escalate_due(as_of timestamptz DEFAULT now())
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    batch integer := COALESCE(NULLIF(current_setting('order_flow.batch_size', true), '')::integer, 1000);
BEGIN
    IF as_of IS NULL THEN
        RAISE EXCEPTION 'as_of must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite time, not %', as_of USING ERRCODE = '22008',
            CONSTRAINT = 'order_flow_business_time';
    END IF;
    RETURN order_flow._escalate_notifications(as_of, batch)
         + order_flow._raise_reminders(as_of, batch);
END
$$;

CREATE OR REPLACE FUNCTION order_flow.logistics_update(tracking_no text, status text, at timestamptz,
                                            location text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    sh record;
    st text;
    tbl regclass;
    id_ bigint;
BEGIN
    IF tracking_no IS NULL OR status IS NULL OR at IS NULL THEN
        RAISE EXCEPTION 'tracking number, status and time must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(at) THEN
        RAISE EXCEPTION 'trace time must be a finite time, not %', at USING ERRCODE = '22008';
    END IF;
    IF at > clock_timestamp() + interval '5 minutes' THEN
        RAISE EXCEPTION 'trace time % lies in the future', at USING ERRCODE = '22023';
    END IF;
    SELECT * INTO sh FROM order_flow.shipment s WHERE s.waybill = tracking_no;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown tracking number %', tracking_no USING ERRCODE = 'P0002';
    END IF;
    INSERT INTO order_flow.logistics_trace (tracking_no, order_key, status, at, location)
    VALUES (tracking_no, sh.order_key, status, at, location) RETURNING id INTO id_;
    PERFORM order_flow._append_event(sh.order_key, 'logistics', NULL, NULL,
        jsonb_build_object('tracking_no', tracking_no, 'status', status, 'location', location), at);
    SELECT t.state, t.tbl::regclass INTO st, tbl FROM order_flow.tracked_order t
     WHERE t.order_key = sh.order_key;
    IF status IN ('in_transit', 'delivered') AND st = 'shipped' THEN
        PERFORM order_flow._owner_move(tbl, sh.order_key, 'in_transit', 'carrier trace', '{}');
        st := 'in_transit';
    END IF;
    IF status = 'delivered' AND st = 'in_transit' THEN
        PERFORM order_flow._owner_move(tbl, sh.order_key, 'delivered', 'carrier trace', '{}');
    END IF;
    RETURN id_;
END
$$;


/*
 * Non-finite times already stored (1.1 accepted an import at -infinity)
 * give no duration instead of an error that would break the metrics views
 * for everyone: _hours() is NULL unless both ends are finite.
 */
CREATE FUNCTION order_flow._hours(start timestamptz, stop timestamptz) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN isfinite(start) AND isfinite(stop) THEN date_part('epoch', stop - start) / 3600 END $$;
COMMENT ON FUNCTION order_flow._hours(timestamptz, timestamptz) IS
    'Internal: hours from start to stop; NULL when either is NULL or not finite';
/* pure, reads nothing: whoever may read the views may call it */
GRANT EXECUTE ON FUNCTION order_flow._hours(timestamptz, timestamptz) TO PUBLIC;

CREATE OR REPLACE VIEW order_flow.order_timeline AS
SELECT t.order_key,
       coalesce(f.customer_key, t.customer_key) AS customer_key,
       t.workflow,
       t.state,
       coalesce(t.created_at, f.ordered_at) AS created_at,
       t.contract_signed_at,
       t.warehouse_confirmed_at,
       t.finance_approved_at,
       t.shipped_at,
       f.first_logistics_at,
       f.delivered_at,
       f.accepted_at,
       order_flow._hours(coalesce(t.created_at, f.ordered_at), t.contract_signed_at)
           AS hours_created_to_contract,
       order_flow._hours(t.contract_signed_at, t.warehouse_confirmed_at)
           AS hours_contract_to_warehouse,
       order_flow._hours(t.warehouse_confirmed_at, t.finance_approved_at)
           AS hours_warehouse_to_finance,
       order_flow._hours(t.finance_approved_at, t.shipped_at)
           AS hours_finance_to_shipped,
       order_flow._hours(t.contract_signed_at, f.first_logistics_at)
           AS hours_to_first_logistics,
       order_flow._hours(t.contract_signed_at, t.shipped_at)
           AS processing_hours
  FROM order_flow.tracked_order t
  LEFT JOIN order_flow.order_fact f ON f.order_key = t.order_key
 WHERE t.tbl IS NOT NULL;

CREATE OR REPLACE VIEW order_flow.state_durations AS
SELECT v.order_key,
       v.state,
       v.visit,
       v.seq,
       v.entered_at,
       v.left_at,
       order_flow._hours(v.entered_at, u.until) AS wall_hours,
       CASE WHEN u.until IS NULL OR NOT isfinite(u.until) OR NOT isfinite(v.entered_at) THEN NULL
            WHEN cal.always_open IS NOT FALSE THEN order_flow._hours(v.entered_at, u.until)
            ELSE order_flow.business_hours(cal.calendar, v.entered_at, u.until) END AS business_hours,
       s.owner_department,
       coalesce(cal.calendar, '24x7') AS calendar,
       s.category,
       s.max_dwell,
       v.exception_type,
       v.route
  FROM (SELECT e.order_key, e.seq, e.to_state AS state, e.occurred_at AS entered_at,
               lead(e.occurred_at) OVER w AS left_at,
               row_number() OVER (PARTITION BY e.order_key, e.to_state ORDER BY e.seq) AS visit,
               string_agg(e.to_state, '>') OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
                   AS route,
               nullif(e.details->>'exception_type', '') AS exception_type
          FROM order_flow.audit_log e
         WHERE e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state
        WINDOW w AS (PARTITION BY e.order_key ORDER BY e.seq)) v
  LEFT JOIN order_flow.tracked_order t ON t.order_key = v.order_key
  LEFT JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = v.state
  LEFT JOIN order_flow.department d ON d.department = s.owner_department
  LEFT JOIN order_flow.calendar cal ON cal.calendar = coalesce(d.calendar, '24x7')
 CROSS JOIN LATERAL (
        SELECT coalesce(v.left_at, CASE WHEN s.category IS DISTINCT FROM 'terminal' THEN now() END) AS until) u;


/* ------------------------------------------------------------------ */
/* The metrics rollup off the transition path.                         */
/* ------------------------------------------------------------------ */

/*
 * Events are folded into order_fact and exception_fact by the scheduler,
 * within about a second of their commit (order_flow.metrics_fold =
 * 'auto', when a scheduler serves the database, or 'async'), or by the
 * transaction that writes them ('sync'; 'auto' without a scheduler).  The
 * per-order watermark makes every fold exact whoever asks and how often.
 */
CREATE TABLE order_flow.metrics_watermark (
    order_key       text PRIMARY KEY,
    folded_seq      bigint NOT NULL
) WITH (fillfactor = 70);
/* room on the page keeps its updates HOT */
COMMENT ON TABLE order_flow.metrics_watermark IS
    'Per order: the highest sequence number of its audit chain folded into the metrics rollup';

CREATE TABLE order_flow.fold_progress (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    folded_until    timestamptz NOT NULL,
    folded_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    orders_folded   bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE order_flow.fold_progress IS
    'The metrics fold''s position: every event recorded before folded_until is in the rollup';
/* Everything written so far was folded by 1.1's trigger; the hour's overlap is folded again as a no-op. */
INSERT INTO order_flow.fold_progress (folded_until) VALUES (now() - interval '1 hour');
INSERT INTO order_flow.metrics_watermark (order_key, folded_seq)
SELECT e.order_key, max(e.seq) FROM order_flow.audit_log e
 WHERE NOT starts_with(e.order_key, 'order_flow:') AND e.seq IS NOT NULL
 GROUP BY e.order_key;
DROP TRIGGER audit_log_metrics ON order_flow.audit_log;
DROP FUNCTION order_flow._metrics_capture();
COMMENT ON TABLE order_flow.order_fact IS
    'Per-order rollup of the audit log, folded by order_flow.metrics_fold() (see metrics_rebuild)';

/* rows written by SQL (pg_restore's COPY, a DBA's INSERT) make the scheduler catch up */
CREATE FUNCTION order_flow._fold_catch_up_wanted() RETURNS trigger
    AS 'MODULE_PATHNAME', 'order_flow_fold_catch_up_wanted' LANGUAGE C;
CREATE TRIGGER audit_log_fold_catch_up AFTER INSERT ON order_flow.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._fold_catch_up_wanted();
CREATE TRIGGER tracked_order_fold_catch_up AFTER INSERT ON order_flow.tracked_order
    FOR EACH STATEMENT EXECUTE FUNCTION order_flow._fold_catch_up_wanted();
REVOKE ALL ON FUNCTION order_flow._fold_catch_up_wanted() FROM PUBLIC;


/*
 * _metrics_fold_orders(keys): fold the events of these orders above their
 * watermarks into the rollup, set-based, with the rules the per-event fold
 * applies (attributes and customer from the latest state change; earliest
 * times; "ever" flags; sums), then move the watermarks to the end of each
 * chain.  The watermarks are locked first, in key order, so a fold of the
 * same order by a transaction of its own ('sync') or by another pass waits
 * and then finds nothing left to do: no event is folded twice.  Months of
 * the kpi() cache that a newly folded event changes are marked, as the
 * writing transaction marked them in 1.1.  Returns the number of orders
 * with events folded.
 */
CREATE FUNCTION order_flow._metrics_fold_orders(keys text[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    locked text[];
BEGIN
    INSERT INTO order_flow.metrics_watermark (order_key, folded_seq)
    SELECT k, 0 FROM unnest(keys) k
     WHERE NOT starts_with(k, 'order_flow:')
    ON CONFLICT (order_key) DO NOTHING;
    /*
     * An order whose watermark another transaction holds is being folded by
     * it (a 'sync' writer folds every event of the order above the
     * watermark): left to it, so a pass never waits for a writer.
     */
    SELECT array_agg(x.order_key) INTO locked
      FROM (SELECT w.order_key FROM order_flow.metrics_watermark w
             WHERE w.order_key = ANY (keys) ORDER BY w.order_key FOR UPDATE SKIP LOCKED) x;

    WITH wm AS MATERIALIZED (
        SELECT w.order_key, w.folded_seq FROM order_flow.metrics_watermark w
         WHERE w.order_key = ANY (locked)
    ), news AS MATERIALIZED (
        /* every event above the watermark, read once: the metric ones are folded */
        SELECT e.order_key, e.id, e.seq, e.action, e.from_state, e.to_state, e.occurred_at, e.details,
               (e.seq = 1
                OR e.action IN ('created', 'payment', 'service_request', 'complaint', 'exception', 'logistics')
                OR (e.from_state IS DISTINCT FROM e.to_state
                    AND (e.to_state IN ('contract_signed', 'shipped', 'delivered', 'accepted', 'rework', 'returned')
                         OR e.details ? 'exception_type'))) AS metric
          FROM order_flow.audit_log e JOIN wm ON wm.order_key = e.order_key AND e.seq > wm.folded_seq
    ), top AS (
        SELECT n.order_key, max(n.seq) AS max_seq FROM news n GROUP BY n.order_key
    ), ev AS MATERIALIZED (
        SELECT e.order_key, e.id, e.seq, e.action, e.to_state, e.occurred_at, x.sc,
               CASE WHEN x.sc THEN e.details->>'customer' END AS customer,
               CASE WHEN x.sc THEN e.details->'attributes' END AS attrs,
               x.ex,
               (x.sc AND e.to_state IN ('rework', 'returned'))
                   OR coalesce(x.ex IN ('rework', 'return', 'returned', 'reshipment'), false) AS rework,
               CASE WHEN e.action = 'payment'
                    THEN coalesce(order_flow._metric_number(e.details->'amount'), 0) END AS pay_amount,
               CASE WHEN e.action = 'payment' THEN order_flow._metric_date(e.details->'due_date') END AS due,
               CASE WHEN e.action = 'payment'
                    THEN coalesce(order_flow._metric_date(e.details->'paid_date'),
                                  (e.occurred_at AT TIME ZONE 'UTC')::date) END AS paid
          FROM news e
         CROSS JOIN LATERAL (
                SELECT e.to_state IS NOT NULL AND e.from_state IS DISTINCT FROM e.to_state AS sc) s
         CROSS JOIN LATERAL (
                SELECT s.sc,
                       CASE WHEN s.sc OR e.action = 'exception'
                            THEN nullif(e.details->>'exception_type', '') END AS ex) x
         WHERE e.metric AND e.occurred_at IS NOT NULL
    ), d AS MATERIALIZED (
        SELECT m.order_key,
               (array_agg(m.customer ORDER BY m.seq DESC)
                    FILTER (WHERE m.sc AND m.customer IS NOT NULL))[1] AS customer,
               max(m.seq) FILTER (WHERE m.sc) AS attrs_seq,
               (array_agg(m.attrs ORDER BY m.seq DESC) FILTER (WHERE m.sc))[1] AS attrs,
               min(m.occurred_at) AS ordered_at,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'contract_signed') AS signed,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'shipped') AS shipped,
               min(m.occurred_at) FILTER (WHERE (m.sc AND m.to_state = 'shipped')
                                             OR m.action = 'logistics') AS logistics,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'delivered') AS delivered,
               min(m.occurred_at) FILTER (WHERE m.sc AND m.to_state = 'accepted') AS accepted,
               bool_or(m.rework) AS rework,
               count(m.ex) AS exceptions,
               count(*) FILTER (WHERE m.action = 'payment') AS payments,
               count(*) FILTER (WHERE m.action = 'payment' AND m.due IS NOT NULL
                                  AND m.paid > m.due) AS late,
               coalesce(sum(m.pay_amount) FILTER (WHERE m.action = 'payment'
                                                     AND m.due IS NOT NULL), 0) AS due_amount,
               coalesce(sum(m.pay_amount) FILTER (WHERE m.action = 'payment'
                                                     AND m.paid <= m.due), 0) AS on_time_amount,
               count(*) FILTER (WHERE m.action = 'service_request') AS service_requests,
               count(*) FILTER (WHERE m.action = 'complaint') AS complaints,
               /* kpi() reads it: not only payments, requests, complaints and notes */
               bool_or(m.action NOT IN ('payment', 'service_request', 'complaint', 'note')) AS kpi_touched
          FROM ev m
         GROUP BY m.order_key
    ), upd AS (
        UPDATE order_flow.order_fact f SET
            customer_key = coalesce(d.customer, f.customer_key,
                                    (SELECT t.customer_key FROM order_flow.tracked_order t
                                      WHERE t.order_key = d.order_key)),
            attrs_seq = coalesce(d.attrs_seq, f.attrs_seq),
            region = CASE WHEN d.attrs_seq IS NULL THEN f.region ELSE d.attrs->>'region' END,
            customer_class = CASE WHEN d.attrs_seq IS NULL THEN f.customer_class
                                  ELSE coalesce(d.attrs->>'customer_class', d.attrs->>'grade') END,
            category = CASE WHEN d.attrs_seq IS NULL THEN f.category ELSE d.attrs->>'category' END,
            amount = CASE WHEN d.attrs_seq IS NULL THEN f.amount
                          ELSE order_flow._metric_number(d.attrs->'amount') END,
            promised_ship_date = CASE WHEN d.attrs_seq IS NULL THEN f.promised_ship_date
                                      ELSE order_flow._metric_date(d.attrs->'promised_ship_date') END,
            ordered_at = least(f.ordered_at, d.ordered_at),
            contract_signed_at = least(f.contract_signed_at, d.signed),
            shipped_at = least(f.shipped_at, d.shipped),
            first_logistics_at = least(f.first_logistics_at, d.logistics),
            delivered_at = least(f.delivered_at, d.delivered),
            accepted_at = least(f.accepted_at, d.accepted),
            rework_return = f.rework_return OR d.rework,
            exceptions = f.exceptions + d.exceptions,
            payments = f.payments + d.payments,
            payments_late = f.payments_late + d.late,
            payment_due_amount = f.payment_due_amount + d.due_amount,
            paid_on_time_amount = f.paid_on_time_amount + d.on_time_amount,
            service_requests = f.service_requests + d.service_requests,
            complaints = f.complaints + d.complaints
          FROM d WHERE f.order_key = d.order_key
        RETURNING f.order_key, f.contract_signed_at
    ), ins AS (
        INSERT INTO order_flow.order_fact
            (order_key, customer_key, attrs_seq, region, customer_class, category, amount,
             promised_ship_date, ordered_at, contract_signed_at, shipped_at, first_logistics_at,
             delivered_at, accepted_at, rework_return, exceptions, payments, payments_late,
             payment_due_amount, paid_on_time_amount, service_requests, complaints)
        SELECT d.order_key, coalesce(d.customer, t.customer_key), coalesce(d.attrs_seq, -1),
               d.attrs->>'region',
               coalesce(d.attrs->>'customer_class', d.attrs->>'grade'),
               d.attrs->>'category',
               order_flow._metric_number(d.attrs->'amount'),
               order_flow._metric_date(d.attrs->'promised_ship_date'),
               d.ordered_at, d.signed, d.shipped, d.logistics, d.delivered, d.accepted,
               d.rework, d.exceptions, d.payments, d.late, d.due_amount, d.on_time_amount,
               d.service_requests, d.complaints
          FROM d LEFT JOIN order_flow.tracked_order t ON t.order_key = d.order_key
         WHERE NOT EXISTS (SELECT FROM order_flow.order_fact f WHERE f.order_key = d.order_key)
        RETURNING order_key, contract_signed_at
    ), exc AS (
        INSERT INTO order_flow.exception_fact (order_key, event_id, exception_type, occurred_at, action)
        SELECT ev.order_key, ev.id, ev.ex, ev.occurred_at, ev.action FROM ev WHERE ev.ex IS NOT NULL
    ), marks AS (
        /* one mark per month and transaction; no lock on kpi_dirty without one */
        SELECT order_flow._kpi_mark(r.contract_signed_at) AS marked
          FROM (SELECT * FROM upd UNION ALL SELECT * FROM ins) r
          JOIN d ON d.order_key = r.order_key
         WHERE d.kpi_touched
    ), moved AS (
        UPDATE order_flow.metrics_watermark w SET folded_seq = top.max_seq
          FROM top WHERE w.order_key = top.order_key
        RETURNING w.order_key
    )
    SELECT count(*) INTO n FROM d WHERE (SELECT count(*) FROM marks) >= 0;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION order_flow._metrics_fold_orders(text[]) FROM PUBLIC;
CREATE FUNCTION order_flow._kpi_mark(signed_at timestamptz) RETURNS boolean
    AS 'MODULE_PATHNAME', 'order_flow_kpi_mark' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION order_flow._kpi_mark(timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION order_flow._kpi_mark(timestamptz) IS
    'Internal: mark the kpi() cache month of an order signed at signed_at changed (once per transaction; none for the current month)';
COMMENT ON FUNCTION order_flow._metrics_fold_orders(text[]) IS
    'Internal: fold the events of these orders above their watermarks into the rollup, set-based';

/*
 * _metrics_fold_window(lo, hi): refold every order with events recorded in
 * [lo, hi) -- or, with NULL bounds, every order whose chain is ahead of its
 * watermark -- 5,000 orders per batch, each batch in a subtransaction: a
 * batch that fails is reported and left for the next catch-up, the others
 * go on (strict: the error stands).  Returns the number of orders with
 * events folded.
 */
CREATE FUNCTION order_flow._metrics_fold_window(lo timestamptz, hi timestamptz, strict boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    n bigint := 0;
BEGIN
    FOR keys IN
        SELECT array_agg(k.order_key ORDER BY k.order_key)
          FROM (SELECT c.order_key, (row_number() OVER (ORDER BY c.order_key) - 1) / 5000 AS batch
                  FROM (SELECT DISTINCT e.order_key FROM order_flow.audit_log e
                         WHERE lo IS NOT NULL AND hi IS NOT NULL
                           AND e.recorded_at >= lo AND e.recorded_at < hi
                           AND NOT starts_with(e.order_key, 'order_flow:')
                        UNION
                        SELECT t.order_key FROM order_flow.tracked_order t
                          LEFT JOIN order_flow.metrics_watermark w ON w.order_key = t.order_key
                         WHERE (lo IS NULL OR hi IS NULL) AND t.tbl IS NOT NULL
                           AND t.last_seq > coalesce(w.folded_seq, 0)) c) k
         GROUP BY k.batch ORDER BY k.batch
    LOOP
        IF strict THEN
            n := n + order_flow._metrics_fold_orders(keys);
            CONTINUE;
        END IF;
        BEGIN
            n := n + order_flow._metrics_fold_orders(keys);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'order_flow: could not fold % orders (% to %) into the metrics: %',
                cardinality(keys), keys[1], keys[cardinality(keys)], SQLERRM;
        END;
    END LOOP;
    RETURN n;
END
$$;
REVOKE ALL ON FUNCTION order_flow._metrics_fold_window(timestamptz, timestamptz, boolean) FROM PUBLIC;
COMMENT ON FUNCTION order_flow._metrics_fold_window(timestamptz, timestamptz, boolean) IS
    'Internal: refold the orders with events recorded in [lo, hi); NULL bounds: every order behind its watermark';

/*
 * metrics_fold([catch_up]): fold what no running transaction can still add
 * to: every event recorded before the start of the oldest transaction
 * running in this database (or now).  While a prepared transaction waits,
 * the window does not move (its events are folded once it commits).  With
 * catch_up, also every order whose chain is ahead of its watermark,
 * wherever its events lie (after a restore, which reloads the log without
 * folding it).  One fold at a time: another waits for it, or with wait =>
 * false (the scheduler) returns 0 at once.  Returns the number of orders
 * with events folded.
 */
CREATE FUNCTION order_flow.metrics_fold(catch_up boolean DEFAULT false, wait boolean DEFAULT true)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t1 timestamptz := clock_timestamp();    -- before the activity is read
    lo timestamptz;
    hi timestamptz;
    n bigint;
BEGIN
    IF catch_up IS NULL OR wait IS NULL THEN
        RAISE EXCEPTION 'catch_up and wait must not be null' USING ERRCODE = '22004';
    END IF;
    IF wait THEN
        SELECT p.folded_until INTO lo FROM order_flow.fold_progress p FOR UPDATE;
    ELSE
        SELECT p.folded_until INTO lo FROM order_flow.fold_progress p FOR UPDATE SKIP LOCKED;
        IF NOT FOUND THEN
            RETURN 0;           -- another fold is under way
        END IF;
    END IF;
    IF EXISTS (SELECT FROM pg_prepared_xacts x WHERE x.database = current_database()) THEN
        hi := lo;
    ELSE
        SELECT least(t1, min(a.xact_start)) INTO hi
          FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
           AND a.backend_type NOT IN ('autovacuum worker', 'walsender');
        hi := coalesce(hi, t1);
    END IF;
    /* 100 ms of overlap: a transaction that had begun but not yet shown it */
    n := order_flow._metrics_fold_window(lo - interval '100 milliseconds', hi);
    IF catch_up THEN
        n := n + order_flow._metrics_fold_window(NULL, NULL);
    END IF;
    UPDATE order_flow.fold_progress p
       SET folded_until = greatest(p.folded_until, hi), folded_at = clock_timestamp(),
           orders_folded = p.orders_folded + n;
    RETURN n;
END
$$;
COMMENT ON FUNCTION order_flow.metrics_fold(boolean, boolean) IS
    'Fold committed events into the metrics rollup now (the scheduler does it within about a second); catch_up also folds every order behind its watermark; returns the number of orders folded';

CREATE FUNCTION order_flow.metrics_lag() RETURNS interval
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN EXISTS (SELECT FROM order_flow.audit_log e
                              WHERE e.recorded_at >= p.folded_until
                                AND NOT starts_with(e.order_key, 'order_flow:'))
                THEN greatest(clock_timestamp() - p.folded_until, interval '0')
                ELSE interval '0' END
      FROM order_flow.fold_progress p
$$;
COMMENT ON FUNCTION order_flow.metrics_lag() IS
    'How far the metrics rollup may lag behind the log: 0 when every event is folded, else the time since the fold''s position';

CREATE OR REPLACE FUNCTION order_flow.metrics_rebuild() RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    /*
     * The scheduler's folds first (they take the fold's position first,
     * then the watermarks and the rollup: waiting for them here, before
     * anything else, cannot deadlock), then the writers.
     */
    PERFORM 1 FROM order_flow.fold_progress FOR UPDATE;
    LOCK TABLE order_flow.audit_log IN SHARE MODE;
    /* folds in writing transactions wait: a fold of a watermark locked here would be undone */
    LOCK TABLE order_flow.metrics_watermark IN EXCLUSIVE MODE;
    /* (the TRUNCATE of order_fact also empties the kpi() cache) */
    TRUNCATE order_flow.order_fact, order_flow.exception_fact, order_flow.metrics_watermark;
    /* every order of the log, folded from nothing by the fold's own rules */
    n := order_flow._metrics_fold_window('-infinity', 'infinity', strict => true);
    /* the cache is empty: the fold's marks for it mean nothing */
    TRUNCATE order_flow.kpi_dirty;
    PERFORM order_flow._kpi_marks_spent();
    RETURN n;
END
$$;

REVOKE ALL ON order_flow.metrics_watermark, order_flow.fold_progress FROM PUBLIC;
GRANT SELECT ON order_flow.metrics_watermark, order_flow.fold_progress TO order_flow_admin;
REVOKE ALL ON FUNCTION order_flow._metrics_fold_window(timestamptz, timestamptz, boolean),
    order_flow.metrics_fold(boolean, boolean), order_flow.metrics_lag() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION order_flow.metrics_fold(boolean, boolean), order_flow.metrics_lag() TO order_flow_admin;

/* ------------------------------------------------------------------ */
/* Privileges.                                                         */
/* ------------------------------------------------------------------ */

/* acknowledge() acts for a person: granted to the roles that answer, not to PUBLIC. */
REVOKE EXECUTE ON FUNCTION order_flow.acknowledge(bigint, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION order_flow.repair_drift(regclass, text, text),
    order_flow.audit_checkpoint(), order_flow.verify_audit(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION order_flow.repair_drift(regclass, text, text),
    order_flow.audit_checkpoint(), order_flow.verify_audit(jsonb)
TO order_flow_admin;

/* Every backend re-reads its catalogue cache (which notes the new fold). */
UPDATE order_flow.workflow SET workflow = workflow WHERE false;
