/*
 * src/sql/citus.sql
 *
 * Scale-out on Citus (README, "Scale-out on Citus"): the setup of a managed
 * table distributed by order or by tenant, the catalogue kept the same on
 * every node, and the cluster-wide audit check.
 *
 * A distributed managed table gets four companion tables in schema
 * order_flow_citus, "<table>_audit_log", "_tracked_order", "_notification"
 * and "_outbox": the extension's tables of those names plus dist_key, the
 * table's distribution column, distributed by it and co-located with the
 * table.  On a worker the transition trigger writes an order's chain into
 * the companions' shards beside the order's shard (src/citus/shards.c), in
 * the same local transaction.  The extension's own tables cannot be
 * distributed: they belong to the extension, which Citus creates on every
 * node, and their text order_key could not be co-located with a bigint key.
 *
 * Nothing here runs without Citus: every Citus function is called through
 * EXECUTE, and each function first says that Citus is missing.
 */

/* Is this node a Citus coordinator (false without Citus)? */
CREATE OR REPLACE FUNCTION _order_flow._citus_coordinator() RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    grp integer;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT groupid FROM pg_catalog.pg_dist_local_group' INTO grp;
    RETURN grp = 0;
END
$$;

CREATE OR REPLACE FUNCTION _order_flow._citus_require() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'Citus is not installed in database %', current_database()
            USING ERRCODE = '0A000', HINT = 'CREATE EXTENSION citus first.';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'only a superuser may set up order_flow on Citus' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_dist_node WHERE groupid = 0) THEN
        RAISE EXCEPTION 'run this on the Citus coordinator' USING ERRCODE = '0A000',
            HINT = 'Register the coordinator with citus_set_coordinator_host().';
    END IF;
    IF NOT _order_flow._citus_coordinator() THEN
        RAISE EXCEPTION 'run this on the Citus coordinator, not on a worker' USING ERRCODE = '0A000';
    END IF;
END
$$;

/* Is tbl a Citus table (false without Citus)? */
CREATE OR REPLACE FUNCTION _order_flow._citus_distributed(tbl regclass) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    yes boolean := false;
BEGIN
    IF to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1)'
           INTO yes USING tbl;
    END IF;
    RETURN yes;
END
$$;

/*
 * _citus_move: transition() and import_transition() of an order of a
 * distributed table.  The trigger runs on the worker holding the order's
 * shard, where this backend's context is not: what it records (the action,
 * note, details, business time) goes with the transaction instead, as
 * SET LOCAL order_flow.transition_context, which Citus forwards to the
 * workers when citus.propagate_set_commands is 'local' (set here for the
 * call).  The worker takes it for that order once, with the same checks of
 * the caller's rights.  "Not found" and "already in that state" are
 * decided here, on the row locked through the coordinator.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_move(tbl regclass, key_column name, keytype text,
                                                status_column name, sttype text, order_key text,
                                                to_state text, note text, details jsonb, action text,
                                                occurred_at timestamptz)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    cur text;
    found_it boolean;
    propagate text := current_setting('citus.propagate_set_commands');
BEGIN
    /* the checks _set_context() makes (rights to import, a business time only for imports) */
    PERFORM _order_flow._set_context(order_key, action, note, coalesce(details, '{}'), occurred_at);
    PERFORM _order_flow._take_context_result();
    EXECUTE format('SELECT true, %I::text FROM %s WHERE %I = $1::%s FOR UPDATE',
                   status_column, tbl, key_column, keytype)
       INTO found_it, cur USING order_key;
    IF found_it IS NULL THEN
        RAISE EXCEPTION 'order % not found in %', order_key, tbl USING ERRCODE = 'P0002';
    END IF;
    IF cur = to_state THEN
        RAISE EXCEPTION 'order % is already in state %', order_key, to_state USING ERRCODE = '23514';
    END IF;
    PERFORM set_config('citus.propagate_set_commands', 'local', true);
    EXECUTE format('SET LOCAL order_flow.transition_context = %L',
                   jsonb_build_object('n', clock_timestamp()::text || '/' || pg_backend_pid(),
                                      'order_key', order_key, 'action', action, 'note', note,
                                      'details', coalesce(details, '{}'), 'occurred_at', occurred_at));
    EXECUTE format('UPDATE %s SET %I = $1::%s WHERE %I = $2::%s',
                   tbl, status_column, sttype, key_column, keytype)
       USING to_state, order_key;
    SET LOCAL order_flow.transition_context = '';
    PERFORM set_config('citus.propagate_set_commands', propagate, true);
END
$$;

/*
 * _citus_tenant_key(tbl, key_att): in a database with Citus, an empty
 * table whose order key is unique per tenant (a primary key or unique
 * constraint on the key and one other column) may be managed, to be
 * distributed by that column with citus_distribute(): a table distributed
 * by tenant cannot have a key unique on its own.  Until then its trigger
 * refuses every row (src/citus/shards.c).
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_tenant_key(tbl regclass, key_att smallint) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    busy boolean;
    tenant name := _order_flow._citus_tenant_column(tbl, key_att);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') OR tenant IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', tbl) INTO busy;
    IF busy THEN
        RAISE EXCEPTION 'table % has rows, and its order key is unique only per %', tbl, tenant
            USING ERRCODE = '42P10',
            HINT = 'A table whose order key is unique per tenant is managed empty, then distributed by its tenant with order_flow.citus_distribute().';
    END IF;
    RAISE NOTICE 'the order key of % is unique per %: distribute the table by it with order_flow.citus_distribute() before writing orders',
        tbl, tenant;
    RETURN true;
END
$$;

/* The other column of a two-column unique key of tbl that includes key_att (NULL: none). */
CREATE OR REPLACE FUNCTION _order_flow._citus_tenant_column(tbl regclass, key_att smallint) RETURNS name
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid
                         AND a.attnum = CASE WHEN i.indkey[0] = key_att THEN i.indkey[1] ELSE i.indkey[0] END
     WHERE i.indrelid = tbl AND i.indisunique AND i.indnatts = 2 AND key_att IN (i.indkey[0], i.indkey[1])
       AND i.indpred IS NULL AND i.indexprs IS NULL
     ORDER BY i.indisprimary DESC, a.attname LIMIT 1
$$;

/* The catalogue tables a node's transition trigger reads, parents first. */
CREATE OR REPLACE FUNCTION _order_flow._citus_catalogue_tables() RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY['status_label', 'calendar', 'calendar_hours', 'calendar_holiday', 'workflow',
                 'department', 'state', 'transition_rule', 'member', 'escalation_policy',
                 'reminder_policy']
$$;

/*
 * _citus_load_catalogue(doc): on a worker, replace the catalogue with the
 * coordinator's (doc: one JSON array of rows per table).  Triggers are off
 * while the rows are replaced (session_replication_role = replica): the
 * change was audited on the coordinator, where it was made, and is not
 * audited again; then one statement per table, touching no row, tells
 * every backend's catalogue cache to reload.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_load_catalogue(doc jsonb) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t text;
    n integer := 0;
    k integer;
    tables text[] := _order_flow._citus_catalogue_tables();
BEGIN
    IF _order_flow._citus_coordinator() THEN
        RAISE EXCEPTION 'the coordinator''s catalogue is the original: load it on workers only'
            USING ERRCODE = '0A000';
    END IF;
    /* one load at a time (the scheduler's and a DBA's): the next one's statements see this one's rows */
    PERFORM pg_advisory_xact_lock(hashtext('order_flow.citus_catalogue'));
    SET LOCAL session_replication_role = replica;
    FOR i IN REVERSE array_length(tables, 1)..1 LOOP
        EXECUTE format('DELETE FROM order_flow.%I', tables[i]);
    END LOOP;
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('INSERT INTO order_flow.%1$I SELECT * FROM jsonb_populate_recordset(NULL::order_flow.%1$I, $1)', t)
           USING coalesce(doc->t, '[]');
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
    END LOOP;
    SET LOCAL session_replication_role = origin;
    FOREACH t IN ARRAY tables LOOP
        EXECUTE format('DELETE FROM order_flow.%I WHERE false', t);
    END LOOP;
    RETURN n;
END
$$;

/* This node's catalogue as one document: per table, its rows in a fixed order (equal catalogues, equal text). */
CREATE OR REPLACE FUNCTION _order_flow._citus_catalogue_doc() RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb := '{}';
    t text;
    rows jsonb;
BEGIN
    FOREACH t IN ARRAY _order_flow._citus_catalogue_tables() LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY to_jsonb(c)::text), ''[]'') FROM order_flow.%I c', t)
           INTO rows;
        doc := doc || jsonb_build_object(t, rows);
    END LOOP;
    RETURN doc;
END
$$;

CREATE OR REPLACE FUNCTION order_flow.citus_sync_catalogue() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb;
    bad text;
    nodes integer;
BEGIN
    PERFORM _order_flow._citus_require();
    PERFORM pg_advisory_xact_lock(hashtext('order_flow.citus_catalogue'));
    doc := _order_flow._citus_catalogue_doc();
    EXECUTE 'SELECT count(*), string_agg(format(''%s:%s: %s'', nodename, nodeport, result), ''; '')
                    FILTER (WHERE NOT success)
               FROM run_command_on_workers(format(''SELECT _order_flow._citus_load_catalogue(%L)'', $1))'
       INTO nodes, bad USING doc;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the catalogue could not be copied to every worker' USING ERRCODE = '58000',
            DETAIL = bad, HINT = 'Fix the worker and call order_flow.citus_sync_catalogue() again.';
    END IF;
    /* what the workers have now (the scheduler copies a change it finds different) */
    IF to_regclass('order_flow_citus.catalogue_synced') IS NULL THEN
        CREATE TABLE order_flow_citus.catalogue_synced (digest text NOT NULL, synced_at timestamptz NOT NULL);
    END IF;
    DELETE FROM order_flow_citus.catalogue_synced;
    INSERT INTO order_flow_citus.catalogue_synced VALUES (md5(doc::text), clock_timestamp());
    RETURN nodes;
END
$$;

/*
 * _citus_auto_sync(): on a Citus coordinator with distributed managed
 * tables, copy the catalogue to the workers when it is not what they were
 * last given.  Run by the scheduler at each pass (a catalogue change wakes
 * it at commit, see catalogue/cache.c): an edit reaches the workers within
 * moments, committed, and is audited once, here.  A worker that cannot be
 * reached is logged and tried again at the next pass.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_auto_sync() RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regnamespace('order_flow_citus') IS NULL OR NOT _order_flow._citus_coordinator()
       OR to_regclass('order_flow_citus.catalogue_synced') IS NULL THEN
        RETURN false;
    END IF;
    IF md5(_order_flow._citus_catalogue_doc()::text)
          IS NOT DISTINCT FROM (SELECT digest FROM order_flow_citus.catalogue_synced LIMIT 1) THEN
        RETURN false;
    END IF;
    BEGIN
        PERFORM order_flow.citus_sync_catalogue();
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'order_flow: the catalogue could not be copied to the Citus workers: %', SQLERRM;
        RETURN false;
    END;
    RETURN true;
END
$$;

COMMENT ON FUNCTION order_flow.citus_sync_catalogue IS
    'On a Citus coordinator: copy the workflow catalogue to every worker (their transition triggers read it); returns the number of workers';

CREATE OR REPLACE FUNCTION order_flow.citus_distribute(tbl regclass, distribution_column name DEFAULT NULL,
                                                     shard_count integer DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    m record;
    rel record;
    col name;
    coltype text;
    owner name := (SELECT extowner::regrole::name FROM pg_extension WHERE extname = 'order_flow');
    kinds text[] := ARRAY['tracked_order', 'audit_log', 'notification', 'outbox'];
    pkeys text[] := ARRAY['order_key', 'order_key, seq', 'order_key, id', 'order_key, id'];
    comp text;
    seq text;
    busy boolean;
    tenant name;
BEGIN
    PERFORM _order_flow._citus_require();
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO m FROM order_flow.managed_table mt WHERE mt.relid = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not managed by order_flow', tbl USING ERRCODE = '42704',
            HINT = 'Call order_flow.manage() first, on the coordinator, while the table is local.';
    END IF;
    SELECT c.relname, c.relkind INTO rel FROM pg_class c WHERE c.oid = tbl;
    IF rel.relkind <> 'r' THEN
        RAISE EXCEPTION 'only a plain table can be distributed by order_flow, not %', tbl USING ERRCODE = '0A000';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = tbl) THEN
        RAISE EXCEPTION 'table % is already a Citus table', tbl USING ERRCODE = '55000',
            HINT = 'order_flow.citus_distribute() distributes the table itself.';
    END IF;
    col := coalesce(distribution_column, m.key_column);
    SELECT format_type(a.atttypid, a.atttypmod) INTO coltype FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF coltype IS NULL THEN
        RAISE EXCEPTION 'column "%" of % does not exist', col, tbl USING ERRCODE = '42703';
    END IF;
    tenant := _order_flow._citus_tenant_column(tbl,
                  (SELECT a.attnum FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = m.key_column));
    IF NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                    WHERE i.indrelid = tbl AND i.indisunique AND i.indnatts = 1 AND a.attname = m.key_column
                      AND i.indpred IS NULL AND i.indexprs IS NULL)
       AND col IS DISTINCT FROM tenant THEN
        RAISE EXCEPTION 'the order key of % is unique only per %: distribute it by that column', tbl, tenant
            USING ERRCODE = '42P10';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', tbl) INTO busy;
    IF busy OR EXISTS (SELECT 1 FROM order_flow.tracked_order o WHERE o.tbl = m.tbl) THEN
        RAISE EXCEPTION 'table % has orders: only an empty managed table can be distributed', tbl
            USING ERRCODE = '55000',
            DETAIL = 'The chains of orders already recorded are in the extension''s tables on this node, '
                     'not beside the orders'' shards.',
            HINT = 'Distribute an empty table, then load the orders through it (an order_flow administrator '
                   'may insert orders in any state).';
    END IF;
    FOR i IN 1..4 LOOP
        IF length(rel.relname || '_' || kinds[i]) > 55 THEN
            RAISE EXCEPTION 'table name "%" is too long for its companion tables', rel.relname
                USING ERRCODE = '42622', HINT = 'Rename the table to at most 42 characters.';
        END IF;
        IF to_regclass(format('order_flow_citus.%I', rel.relname || '_' || kinds[i])) IS NOT NULL THEN
            RAISE EXCEPTION 'relation order_flow_citus.% already exists', rel.relname || '_' || kinds[i]
                USING ERRCODE = '42P07',
                HINT = 'Two managed tables of the same name in different schemas cannot both be distributed.';
        END IF;
    END LOOP;

    IF to_regnamespace('order_flow_citus') IS NULL THEN
        EXECUTE format('CREATE SCHEMA order_flow_citus AUTHORIZATION %I', owner);
        EXECUTE 'GRANT USAGE ON SCHEMA order_flow_citus TO order_flow_admin';
    END IF;
    /* the table's trigger is copied to every shard */
    SET LOCAL citus.enable_unsafe_triggers = on;
    IF shard_count IS NULL THEN
        EXECUTE 'SELECT create_distributed_table($1, $2)' USING tbl, col::text;
    ELSE
        EXECUTE 'SELECT create_distributed_table($1, $2, shard_count => $3)' USING tbl, col::text, shard_count;
    END IF;

    FOR i IN 1..4 LOOP
        comp := format('order_flow_citus.%I', rel.relname || '_' || kinds[i]);
        seq := format('order_flow_citus.%I', rel.relname || '_' || kinds[i] || '_id_seq');
        EXECUTE format('CREATE TABLE %s (LIKE order_flow.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                       '%I %s NOT NULL, PRIMARY KEY (%s, dist_key))',
                       comp, kinds[i], 'dist_key', coltype, pkeys[i]);
        IF kinds[i] <> 'tracked_order' THEN
            /*
             * A sequence of its own: Citus gives each worker a range of it
             * (from group << 48), so ids are unique across nodes; the
             * coordinator's rows (acknowledge(), need_info) start at 2^47,
             * above every id of the extension's own tables.
             */
            EXECUTE format('CREATE SEQUENCE %s AS bigint START WITH 140737488355329', seq);
            EXECUTE format('ALTER TABLE %s ALTER COLUMN id SET DEFAULT nextval(%L)', comp, seq);
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %s.id', seq, comp);
        ELSE
            EXECUTE format('ALTER TABLE %s SET (fillfactor = 80)', comp);
        END IF;
        IF kinds[i] = 'notification' THEN
            EXECUTE format('CREATE INDEX ON %s (id)', comp);
        END IF;
        IF kinds[i] = 'audit_log' THEN
            EXECUTE format('CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON %s
                            FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_guard()', comp);
        END IF;
        EXECUTE format('ALTER TABLE %s OWNER TO %I', comp, owner);
        EXECUTE format('GRANT SELECT ON %s TO order_flow_admin', comp);
        EXECUTE 'SELECT create_distributed_table($1, ''dist_key'', colocate_with => $2)'
           USING comp::regclass, tbl::text;
    END LOOP;

    PERFORM order_flow.citus_sync_catalogue();
END
$$;

COMMENT ON FUNCTION order_flow.citus_distribute IS
    'On a Citus coordinator: distribute an empty managed table by its order key (or by distribution_column, a tenant) with its audit chains, notifications and outbox co-located beside it';

/* The chain walk over one log and head pair (C): a Citus worker's shards of the companions. */
CREATE OR REPLACE FUNCTION _order_flow._verify_chains_in(log regclass, head regclass, order_key text)
    RETURNS TABLE (order_key text, event_id bigint, problem text)
    AS 'MODULE_PATHNAME', 'order_flow_verify_audit_in'
    LANGUAGE C STABLE;

/*
 * citus_verify_audit(): verify_audit() over every distributed managed
 * table of the cluster, and every worker's catalogue against the
 * coordinator's (a worker not synced since an edit enforces older rules).  Each worker walks the chains of the shards it
 * holds (run_command_on_colocated_placements, in parallel); the rows of
 * the table are compared with their chain heads through the coordinator,
 * a join Citus runs shard by shard.  A shard that could not be read is a
 * problem too.
 */
CREATE OR REPLACE FUNCTION order_flow.citus_verify_audit()
RETURNS TABLE (tbl text, order_key text, event_id bigint, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    m record;
    log regclass;
    head regclass;
BEGIN
    PERFORM _order_flow._citus_require();
    /* a worker whose catalogue is not the coordinator's enforces other rules */
    RETURN QUERY EXECUTE
        $q$SELECT NULL::text, NULL::text, NULL::bigint,
                  format('the catalogue of worker %s:%s differs from the coordinator''s: run order_flow.citus_sync_catalogue()',
                         r.nodename, r.nodeport)
             FROM run_command_on_workers('SELECT md5(_order_flow._citus_catalogue_doc()::text)') r
            WHERE r.result IS DISTINCT FROM md5(_order_flow._citus_catalogue_doc()::text)
            ORDER BY r.nodeport$q$;
    FOR m IN SELECT mt.*, c.relname FROM order_flow.managed_table mt JOIN pg_class c ON c.oid = mt.relid
              WHERE _order_flow._citus_distributed(mt.relid) ORDER BY mt.tbl LOOP
        log := to_regclass(format('order_flow_citus.%I', m.relname || '_audit_log'));
        head := to_regclass(format('order_flow_citus.%I', m.relname || '_tracked_order'));
        IF log IS NULL OR head IS NULL THEN
            RETURN QUERY SELECT m.tbl, NULL::text, NULL::bigint,
                                'distributed without its companion tables (not set up by citus_distribute())';
            CONTINUE;
        END IF;
        RETURN QUERY EXECUTE
            $q$SELECT $3, p->>'order_key', (p->>'event_id')::bigint, p->>'problem'
                 FROM run_command_on_colocated_placements($1, $2,
                          'SELECT coalesce(json_agg(v), ''[]'') FROM _order_flow._verify_chains_in(''%s'', ''%s'', NULL) v') r,
                      LATERAL jsonb_array_elements(CASE WHEN r.success THEN r.result::jsonb
                          ELSE jsonb_build_array(jsonb_build_object('problem',
                                   format('shard %s on %s:%s could not be checked: %s',
                                          r.shardid1, r.nodename, r.nodeport, r.result))) END) p
                ORDER BY 2, 3$q$
            USING log, head, m.tbl;
        /* rows against their chain heads: both distributed by the same column, joined on it */
        RETURN QUERY EXECUTE format(
            $q$SELECT %4$L, coalesce(o.%1$I::text, t.order_key), NULL::bigint,
                      CASE WHEN t.order_key IS NULL THEN
                               format('row of %%s in state %%s has no chain (written while the trigger was not running)',
                                      %4$L, quote_ident(o.%2$I::text))
                           WHEN o.%1$I IS NULL THEN
                               format('row missing from %%s: its chain says %%s (deleted while the trigger was not running)',
                                      %4$L, quote_ident(t.state))
                           ELSE format('drift: %%s says %%s, the chain says %%s', %4$L,
                                       quote_ident(o.%2$I::text), coalesce(quote_ident(t.state), 'deleted'))
                      END
                 FROM %5$s o
                 FULL JOIN %6$s t ON t.dist_key = o.%3$I AND t.order_key = o.%1$I::text
                WHERE t.order_key IS NULL OR (o.%1$I IS NULL AND t.state IS NOT NULL)
                   OR (o.%1$I IS NOT NULL AND t.state IS DISTINCT FROM o.%2$I::text)
                ORDER BY 2$q$,
            m.key_column, m.status_column,
            (SELECT column_to_column_name(p.logicalrelid, p.partkey) FROM pg_dist_partition p
              WHERE p.logicalrelid = m.relid),
            m.tbl, m.relid::regclass, head);
    END LOOP;
END
$$;

COMMENT ON FUNCTION order_flow.citus_verify_audit IS
    'On a Citus coordinator: verify_audit() over every distributed managed table, each worker checking the chains of its shards, and every worker''s catalogue against the coordinator''s; no row means intact';

/* ------------------------------------------------------------------ */
/* The broadcast on Citus: appends, escalation, reminders,             */
/* acknowledgements and the outbox relay over the companion tables.    */
/* ------------------------------------------------------------------ */

/*
 * _citus_local_groups(): on this node, the shards of each companion group
 * it holds (the notification, outbox, head and log shards of one hash
 * range), with the companions' common prefix (for their sequences) and the
 * type of dist_key.  Each shard has one placement, so each group is swept
 * by exactly one node's scheduler, wherever the rebalancer put it.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_local_groups()
RETURNS TABLE (base text, dist_type text, notif regclass, outbox regclass, head regclass, log regclass)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regnamespace('order_flow_citus') IS NULL OR to_regclass('pg_catalog.pg_dist_placement') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT format('order_flow_citus.%I', left(c.relname, -length('_notification'))),
               format_type(a.atttypid, a.atttypmod),
               to_regclass(shard_name(c.oid, s.shardid)),
               (SELECT to_regclass(shard_name(k.oid, ks.shardid)) FROM pg_class k
                  JOIN pg_dist_shard ks ON ks.logicalrelid = k.oid AND ks.shardminvalue = s.shardminvalue
                 WHERE k.relnamespace = c.relnamespace AND k.relname = left(c.relname, -length('_notification')) || '_outbox'),
               (SELECT to_regclass(shard_name(k.oid, ks.shardid)) FROM pg_class k
                  JOIN pg_dist_shard ks ON ks.logicalrelid = k.oid AND ks.shardminvalue = s.shardminvalue
                 WHERE k.relnamespace = c.relnamespace AND k.relname = left(c.relname, -length('_notification')) || '_tracked_order'),
               (SELECT to_regclass(shard_name(k.oid, ks.shardid)) FROM pg_class k
                  JOIN pg_dist_shard ks ON ks.logicalrelid = k.oid AND ks.shardminvalue = s.shardminvalue
                 WHERE k.relnamespace = c.relnamespace AND k.relname = left(c.relname, -length('_notification')) || '_audit_log')
          FROM pg_class c
          JOIN pg_dist_shard s ON s.logicalrelid = c.oid
          JOIN pg_dist_placement p ON p.shardid = s.shardid
                                  AND p.groupid = (SELECT groupid FROM pg_dist_local_group)
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'dist_key'
         WHERE c.relnamespace = to_regnamespace('order_flow_citus') AND c.relname LIKE '%\_notification'
         ORDER BY 3$q$;
END
$$;

/*
 * _citus_tables(): on the coordinator, each distributed managed table's
 * companion tables (distributed: a statement on one routes to its shards),
 * and keyexpr, the key of a companion row e in the coordinator's rollup
 * and views: its order key, or tenant/key for a table distributed by
 * tenant (a worker, which has no managed_table rows, sees order keys).
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_tables()
RETURNS TABLE (base text, dist_type text, notif regclass, outbox regclass, head regclass, log regclass,
               keyexpr text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF to_regnamespace('order_flow_citus') IS NULL OR to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT b.base, format_type(a.atttypid, a.atttypmod), c.oid::regclass,
               to_regclass(b.base || '_outbox'), to_regclass(b.base || '_tracked_order'),
               to_regclass(b.base || '_audit_log'),
               CASE WHEN column_to_column_name(mp.logicalrelid, mp.partkey) <> mt.key_column
                    THEN 'e.dist_key::text || ''/'' || e.order_key' ELSE 'e.order_key' END
          FROM pg_class c
          JOIN pg_dist_partition p ON p.logicalrelid = c.oid
          JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'dist_key'
          CROSS JOIN LATERAL (SELECT format('order_flow_citus.%I', left(c.relname, -length('_notification'))) AS base) b
          LEFT JOIN order_flow.managed_table mt
            ON format('order_flow_citus.%I', (SELECT m.relname FROM pg_class m WHERE m.oid = mt.relid)) = b.base
          LEFT JOIN pg_dist_partition mp ON mp.logicalrelid = mt.relid
         WHERE c.relnamespace = to_regnamespace('order_flow_citus') AND c.relname LIKE '%\_notification'
         ORDER BY 1$q$;
END
$$;

/*
 * _append_at(log, head, base, dist, dist_type, order_key, action, from_state,
 * to_state, details): one event appended to an order's chain in the
 * companion tables given -- shards on a worker (a sweep), or the
 * distributed tables on the coordinator, where each statement is routed to
 * the order's shard (acknowledge()).  The head is locked first, as the
 * trigger locks it; the hash is order_flow.event_hash(), the one
 * verify_audit() recomputes.  Returns the event's sequence number.
 */
CREATE OR REPLACE FUNCTION _order_flow._append_at(log regclass, head regclass, base text, dist text,
                                               dist_type text, order_key text, action text,
                                               from_state text, to_state text, details jsonb,
                                               occurred_at timestamptz DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    h record;
    seq bigint;
    at timestamptz := clock_timestamp();
    occurred timestamptz := coalesce(occurred_at, at);
    who text := order_flow.current_actor();
    dbu text := current_user;
    hash bytea;
BEGIN
    EXECUTE format('SELECT last_seq, last_hash FROM %s WHERE dist_key = $1::%s AND order_key = $2 FOR UPDATE',
                   head, dist_type)
       INTO h USING dist, order_key;
    IF h.last_seq IS NULL THEN
        RAISE EXCEPTION 'order % has no chain in %', order_key, head USING ERRCODE = 'P0002';
    END IF;
    seq := h.last_seq + 1;
    hash := order_flow.event_hash(h.last_hash, order_key, seq, action, from_state, to_state, who, dbu, occurred, at,
                                  details);
    EXECUTE format('INSERT INTO %s (id, order_key, seq, action, from_state, to_state, actor, db_user,'
                   ' occurred_at, recorded_at, details, prev_hash, hash, dist_key)'
                   ' VALUES (nextval(%L), $1, $2, $3, $4, $5, $6, $7, $8, $13, $9, $10, $11, $12::%s)',
                   log, base || '_audit_log_id_seq', dist_type)
       USING order_key, seq, action, from_state, to_state, who, dbu, occurred, details, h.last_hash, hash, dist, at;
    EXECUTE format('UPDATE %s SET last_seq = $1, last_hash = $2,'
                   ' last_occurred_at = greatest(last_occurred_at, $3)'
                   ' WHERE dist_key = $4::%s AND order_key = $5', head, dist_type)
       USING seq, hash, occurred, dist, order_key;
    RETURN seq;
END
$$;

/*
 * _citus_escalate_local(as_of, batch): _escalate_notifications() for the
 * companion shards this node holds (each node's scheduler sweeps its own
 * shards: no statement crosses nodes, no lock is held across them, and a
 * shard moved elsewhere is swept there).  One notification at a time, in
 * a subtransaction: a failure is logged and the sweep goes on.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_escalate_local(as_of timestamptz, batch integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    r record;
    pol record;
    dl timestamptz;
    pl jsonb;
    nid bigint;
    seq bigint;
    done integer := 0;
BEGIN
    FOR g IN SELECT * FROM _order_flow._citus_local_groups() LOOP
        EXIT WHEN done >= batch;
        EXECUTE format('UPDATE %s x SET escalates = false
                         WHERE x.status = ''pending'' AND x.escalates AND x.deadline <= $1
                           AND NOT EXISTS (SELECT 1 FROM order_flow.escalation_policy p
                                            WHERE p.department = x.department AND p.level = x.level + 1)', g.notif)
           USING as_of;
        FOR r IN EXECUTE format('SELECT x.*, x.dist_key::text AS dist FROM %s x
                                  WHERE x.status = ''pending'' AND x.escalates AND x.deadline <= $1
                                  ORDER BY x.deadline LIMIT $2 FOR UPDATE SKIP LOCKED', g.notif)
                   USING as_of, batch - done
        LOOP
            BEGIN
                SELECT * INTO pol FROM order_flow.escalation_policy p
                 WHERE p.department = r.department AND p.level = r.level + 1;
                dl := order_flow.department_deadline(r.department, as_of, pol.delay);
                pl := _order_flow._escalation_payload(r.payload, r.level + 1, dl, r.id, pol.title, r.deadline);
                EXECUTE format('UPDATE %s SET status = ''escalated'', answered_at = clock_timestamp()
                                 WHERE dist_key = $1::%s AND id = $2', g.notif, g.dist_type)
                   USING r.dist, r.id;
                EXECUTE format('INSERT INTO %s (id, order_key, department, level, deadline, payload, kind,
                                                from_state, to_state, event_seq, parent_id, escalates, dist_key)
                                VALUES (nextval(%L), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                                        EXISTS (SELECT 1 FROM order_flow.escalation_policy p
                                                 WHERE p.department = $2 AND p.level = $3 + 1), $11::%s)
                                RETURNING id', g.notif, g.base || '_notification_id_seq', g.dist_type)
                   INTO nid
                   USING r.order_key, r.department, r.level + 1, dl, pl, r.kind, r.from_state, r.to_state,
                         r.event_seq, r.id, r.dist;
                seq := _order_flow._append_at(g.log, g.head, g.base, r.dist, g.dist_type, r.order_key, 'escalate',
                           NULL, NULL,
                           _order_flow._escalate_details(nid, r.id, r.department, r.level + 1, pol.title, dl,
                                                         r.deadline));
                EXECUTE format('INSERT INTO %s (id, order_key, notification_id, payload, kind, event_seq, dist_key)
                                VALUES (nextval(%L), $1, $2, $3, ''escalation'', $4, $5::%s)',
                               g.outbox, g.base || '_outbox_id_seq', g.dist_type)
                   USING r.order_key, nid, pl || jsonb_build_object('notification_id', nid), seq, r.dist;
                done := done + 1;
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'order_flow: could not escalate notification % in %: %', r.id, g.notif, SQLERRM;
            END;
        END LOOP;
    END LOOP;
    RETURN done;
END
$$;

/* _citus_remind_local(as_of, batch): _raise_reminders() for the companion shards this node holds. */
CREATE OR REPLACE FUNCTION _order_flow._citus_remind_local(as_of timestamptz, batch integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    r record;
    p record;
    lvl integer;
    seq bigint;
    msg jsonb;
    done integer := 0;
BEGIN
    FOR g IN SELECT * FROM _order_flow._citus_local_groups() LOOP
        EXIT WHEN done >= batch;
        FOR r IN EXECUTE format('SELECT t.order_key, t.dist_key::text AS dist, t.workflow, t.state, t.entered_at,
                                        t.reminder_level, s.max_dwell, s.owner_department
                                   FROM %s t JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = t.state
                                  WHERE t.stale_after IS NOT NULL AND t.stale_after <= $1
                                  ORDER BY t.stale_after LIMIT $2 FOR UPDATE OF t SKIP LOCKED', g.head)
                   USING as_of, batch - done
        LOOP
            BEGIN
                lvl := r.reminder_level;
                FOR p IN SELECT level, factor FROM order_flow.reminder_policy x
                          WHERE x.workflow = r.workflow AND x.level > r.reminder_level
                            AND r.entered_at + r.max_dwell * x.factor <= as_of
                          ORDER BY level
                LOOP
                    msg := _order_flow._remind_message(r.order_key, r.state, p.level, r.owner_department,
                                                       r.max_dwell * p.factor, r.entered_at);
                    seq := _order_flow._append_at(g.log, g.head, g.base, r.dist, g.dist_type, r.order_key,
                                                  'remind', r.state, r.state, msg);
                    EXECUTE format('INSERT INTO %s (id, order_key, payload, kind, event_seq, dist_key)
                                    VALUES (nextval(%L), $1, $2, ''reminder'', $3, $4::%s)',
                                   g.outbox, g.base || '_outbox_id_seq', g.dist_type)
                       USING r.order_key, msg, seq, r.dist;
                    lvl := p.level;
                    done := done + 1;
                END LOOP;
                EXECUTE format('UPDATE %s t SET reminder_level = $1,
                                       stale_after = t.entered_at + $2 *
                                           (SELECT x.factor FROM order_flow.reminder_policy x
                                             WHERE x.workflow = $3 AND x.level = $1 + 1)
                                 WHERE t.dist_key = $4::%s AND t.order_key = $5', g.head, g.dist_type)
                   USING lvl, r.max_dwell, r.workflow, r.dist, r.order_key;
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'order_flow: could not remind order % in %: %', r.order_key, g.head, SQLERRM;
            END;
        END LOOP;
    END LOOP;
    RETURN done;
END
$$;

/* The earliest escalation due in the companion shards this node holds (NULL: none). */
CREATE OR REPLACE FUNCTION _order_flow._citus_next_due() RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    d timestamptz;
    first timestamptz;
BEGIN
    FOR g IN SELECT * FROM _order_flow._citus_local_groups() LOOP
        EXECUTE format('SELECT min(deadline) FROM %s WHERE status = ''pending'' AND escalates', g.notif) INTO d;
        first := least(first, d);
    END LOOP;
    RETURN first;
END
$$;

/*
 * _citus_acknowledge(notification_id, response, details, who):
 * acknowledge() of a notification of a distributed table, through the
 * coordinator.  The notification is found by its id (unique across the
 * cluster), then locked, answered and recorded with statements Citus
 * routes to its order's shard, in the caller's distributed transaction.
 * NULL: no distributed table has it.  The checks of details and response
 * are acknowledge()'s, made before.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_acknowledge(notification_id bigint, response text, details jsonb,
                                                       who text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    g record;
    f record;
    n record;
    wf text;
    origin text;
    window_ interval;
    dl timestamptz;
    pl jsonb;
    nid bigint;
    seq bigint;
    now_ timestamptz := clock_timestamp();
BEGIN
    FOR g IN SELECT * FROM _order_flow._citus_tables() LOOP
        EXECUTE format('SELECT dist_key::text AS dist FROM %s WHERE id = $1', g.notif) INTO f USING notification_id;
        CONTINUE WHEN f.dist IS NULL;
        EXECUTE format('SELECT x.*, x.dist_key::text AS dist FROM %s x WHERE x.dist_key = $1::%s AND x.id = $2 FOR UPDATE',
                       g.notif, g.dist_type)
           INTO n USING f.dist, notification_id;
        PERFORM _order_flow._may_answer(n.id, n.department, n.status, who);
        EXECUTE format('UPDATE %s x SET status = $1, answered_at = $2, answered_by = $3, response = $4
                         WHERE x.dist_key = $5::%s AND x.id = $6', g.notif, g.dist_type)
           USING CASE WHEN response = 'ack' THEN 'acknowledged' ELSE 'need_info' END, now_, who, details,
                 n.dist, n.id;
        IF response = 'ack' THEN
            PERFORM _order_flow._append_at(g.log, g.head, g.base, n.dist, g.dist_type, n.order_key, 'acknowledge',
                NULL, NULL, jsonb_build_object('notification_id', n.id, 'department', n.department,
                                               'level', n.level, 'response', details));
            RETURN n.id;
        END IF;

        EXECUTE format('SELECT workflow FROM %s WHERE dist_key = $1::%s AND order_key = $2', g.head, g.dist_type)
           INTO wf USING n.dist, n.order_key;
        SELECT r.origin_department, r.ack_within INTO origin, window_
          FROM order_flow.transition_rule r
         WHERE r.workflow = wf AND r.from_state = n.from_state AND r.to_state = n.to_state;
        origin := COALESCE(origin, 'sales');
        window_ := COALESCE(window_, interval '15 minutes');
        dl := order_flow.department_deadline(origin, now_, window_);
        pl := _order_flow._need_info_payload(n.payload, origin, dl, details, who, n.department, n.id);
        EXECUTE format('INSERT INTO %s (id, order_key, department, level, deadline, payload, kind,
                                        from_state, to_state, event_seq, parent_id, dist_key)
                        VALUES (nextval(%L), $1, $2, 1, $3, $4, ''need_info'', $5, $6, $7, $8, $9::%s)
                        RETURNING id', g.notif, g.base || '_notification_id_seq', g.dist_type)
           INTO nid USING n.order_key, origin, dl, pl, n.from_state, n.to_state, n.event_seq, n.id, n.dist;
        seq := _order_flow._append_at(g.log, g.head, g.base, n.dist, g.dist_type, n.order_key, 'need_info', NULL, NULL,
            _order_flow._need_info_details(n.id, n.department, n.level, details, nid, origin));
        EXECUTE format('INSERT INTO %s (id, order_key, notification_id, payload, kind, event_seq, dist_key)
                        VALUES (nextval(%L), $1, $2, $3, ''need_info'', $4, $5::%s)',
                       g.outbox, g.base || '_outbox_id_seq', g.dist_type)
           USING n.order_key, nid, pl || jsonb_build_object('notification_id', nid), seq, n.dist;
        RETURN nid;
    END LOOP;
    RETURN NULL;
END
$$;

/*
 * _citus_outbox_claim(batch, lease, who): outbox_claim() over the
 * distributed tables' outboxes, through the coordinator.  The candidate
 * orders (undelivered messages, no live lease, oldest first) are read from
 * every shard; each is taken under the same transaction-scoped advisory
 * lock as on one server (every relay claims through the coordinator), and
 * the lease is written by a statement Citus sends to the shards holding
 * them, which rechecks that no live lease was written meanwhile.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_outbox_claim(batch integer, lease interval, who text)
RETURNS TABLE (id bigint, idempotency_key text, order_key text, seq bigint, kind text,
               occurred_at timestamptz, attempts integer, message jsonb)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    g record;
    r record;
    taken integer := 0;
    dists text[];
    keys text[];
    mine text[];
    got jsonb := '[]';
    until timestamptz := clock_timestamp() + lease;
BEGIN
    FOR g IN SELECT * FROM _order_flow._citus_tables() LOOP
        EXIT WHEN taken >= batch;
        EXECUTE format('SELECT array_agg(c.dist ORDER BY c.oldest), array_agg(c.order_key ORDER BY c.oldest)
                          FROM (SELECT o.dist_key::text AS dist, o.order_key, min(o.created_at) AS oldest
                                  FROM %s o
                                 WHERE o.delivered_at IS NULL
                                 GROUP BY 1, 2
                                HAVING NOT coalesce(bool_or(o.lease_until > $2), false)
                                 ORDER BY 3 LIMIT $1) c', g.outbox)
           INTO dists, keys USING batch - taken, clock_timestamp();
        CONTINUE WHEN keys IS NULL;
        SELECT array_agg(dists[i] || '/' || keys[i]) INTO mine
          FROM generate_subscripts(keys, 1) i
         WHERE pg_try_advisory_xact_lock(hashtext('order_flow.outbox'), hashtext(g.base || '/' || dists[i] || '/' || keys[i]));
        CONTINUE WHEN mine IS NULL;
        taken := taken + cardinality(mine);
        FOR r IN EXECUTE format('UPDATE %s o SET claimed_by = $1, lease_until = $2, attempts = o.attempts + 1
                                  WHERE o.dist_key = ANY ($3::%s[]) AND o.dist_key::text || ''/'' || o.order_key = ANY ($4)
                                    AND o.delivered_at IS NULL
                                    AND NOT coalesce(o.lease_until > $5, false)
                                 RETURNING o.id, o.order_key, o.event_seq, o.kind, o.created_at, o.attempts, o.payload',
                                g.outbox, g.dist_type)
                   USING who, until, (SELECT array_agg(split_part(m, '/', 1)) FROM unnest(mine) m), mine,
                         clock_timestamp()
        LOOP
            got := got || jsonb_build_array(to_jsonb(r));
        END LOOP;
    END LOOP;
    RETURN QUERY
    SELECT (e->>'id')::bigint, m.ikey, e->>'order_key', (e->>'event_seq')::bigint, m.kind,
           (e->>'created_at')::timestamptz, (e->>'attempts')::integer,
           jsonb_build_object('id', (e->>'id')::bigint, 'idempotency_key', m.ikey, 'order_key', e->>'order_key',
                              'seq', (e->'event_seq'), 'kind', m.kind, 'occurred_at', e->'created_at',
                              'attempt', (e->>'attempts')::integer, 'payload', e->'payload')
      FROM jsonb_array_elements(got) e
     CROSS JOIN LATERAL (SELECT (e->>'order_key') || '/' || (e->>'id') AS ikey,
                                coalesce(e->>'kind', 'message') AS kind) m
     ORDER BY (e->>'order_key'), (e->>'event_seq')::bigint NULLS FIRST, (e->>'id')::bigint;
END
$$;

/* _citus_outbox_done(ids): outbox_done() over the distributed tables' outboxes; returns how many. */
CREATE OR REPLACE FUNCTION _order_flow._citus_outbox_done(ids bigint[]) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    k integer;
    n integer := 0;
BEGIN
    FOR g IN SELECT * FROM _order_flow._citus_tables() LOOP
        EXECUTE format('UPDATE %s o SET delivered_at = $2, lease_until = NULL
                         WHERE o.id = ANY ($1) AND o.delivered_at IS NULL', g.outbox) USING ids, clock_timestamp();
        GET DIAGNOSTICS k = ROW_COUNT;
        n := n + k;
    END LOOP;
    RETURN n;
END
$$;

/*
 * _citus_head(order_key, tbl): the chain heads of order_key in the
 * distributed tables (of tbl only, when given), with where they live.  In
 * a table distributed by tenant one key may have a head per tenant.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_head(order_key text, tbl regclass DEFAULT NULL)
RETURNS TABLE (base text, dist_type text, head regclass, log regclass, outbox regclass, dist text,
               row_ order_flow.tracked_order)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    g record;
    only_ text := (SELECT format('order_flow_citus.%I', c.relname) FROM pg_class c WHERE c.oid = tbl);
BEGIN
    FOR g IN SELECT * FROM _order_flow._citus_tables() t WHERE only_ IS NULL OR t.base = only_ LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L::text, %L::text, %L::regclass, %L::regclass, %L::regclass, t.dist_key::text,
                    jsonb_populate_record(NULL::order_flow.tracked_order, to_jsonb(t))
               FROM %s t WHERE t.order_key = $1', g.base, g.dist_type, g.head, g.log, g.outbox, g.head)
           USING order_key;
    END LOOP;
END
$$;

/*
 * _citus_only_head(order_key, tbl): the one chain head of order_key in the
 * distributed tables (of tbl, when given), as _citus_head() returns it;
 * none is P0002, two (a key two tenants use) are ambiguous, 21000.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_only_head(order_key text, tbl regclass,
    OUT base text, OUT dist_type text, OUT head regclass, OUT log regclass, OUT outbox regclass, OUT dist text,
    OUT row_ order_flow.tracked_order)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    h record;
    n integer := 0;
BEGIN
    FOR h IN SELECT * FROM _order_flow._citus_head(order_key, tbl) LOOP
        n := n + 1;
        base := h.base;
        dist_type := h.dist_type;
        head := h.head;
        log := h.log;
        outbox := h.outbox;
        dist := h.dist;
        row_ := h.row_;
    END LOOP;
    IF n = 0 THEN
        RAISE EXCEPTION 'order % is not tracked', order_key USING ERRCODE = 'P0002';
    ELSIF n > 1 THEN
        RAISE EXCEPTION 'order key % is used by % orders of distributed tables', order_key, n
            USING ERRCODE = '21000',
                  HINT = 'In a table distributed by tenant an order key is unique per tenant only.';
    END IF;
END
$$;

/*
 * _citus_append_event(order_key, action, from_state, to_state, details,
 * occurred_at): _append_event() for an order of a distributed table,
 * through the coordinator (record(), the station's events).  Returns the
 * event's id.  A key two tenants use is ambiguous here: refused.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_append_event(order_key text, action text, from_state text,
                                                        to_state text, details jsonb, occurred_at timestamptz,
                                                        keep_state boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    h record;
    seq bigint;
    id_ bigint;
BEGIN
    SELECT * INTO h FROM _order_flow._citus_only_head(order_key, NULL);
    IF keep_state THEN
        /* a fact (record()): from and to the order's state */
        from_state := (h.row_).state;
        to_state := from_state;
    END IF;
    seq := _order_flow._append_at(h.log, h.head, h.base, h.dist, h.dist_type, order_key, action,
                                  from_state, to_state, coalesce(details, '{}'), occurred_at);
    EXECUTE format('SELECT id FROM %s WHERE dist_key = $1::%s AND order_key = $2 AND seq = $3', h.log, h.dist_type)
       INTO id_ USING h.dist, order_key, seq;
    RETURN id_;
END
$$;

/*
 * _citus_metrics_fold(catch_up): on a Citus coordinator, fold the events
 * of the distributed tables' orders into this node's metrics rollup, so
 * that kpi(), customer_health and exception_pareto count every order of
 * the cluster.  metrics_fold() (the scheduler's) and metrics_rebuild()
 * call it.
 *
 * The window is metrics_fold()'s, over the cluster: events recorded before
 * the start of the oldest transaction running in this database on any
 * node (or now), and none while any node holds a prepared transaction (a
 * two-phase commit under way).  The events of every order with an event
 * in the window are copied into order_flow.citus_fold_stage and folded by
 * _metrics_fold_orders() with the same rules and the same per-order
 * watermarks as on one node, then the stage is emptied, all in this
 * transaction.  catch_up: every order of every distributed table.  In a
 * table distributed by tenant the rollup's order key is tenant/key.  The
 * nodes' clocks are assumed to agree to within the window's 100 ms of
 * overlap.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_metrics_fold(catch_up boolean) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
    t1 timestamptz := clock_timestamp();
    lo timestamptz;
    hi timestamptz;
    held boolean;
    keys text[];
    n bigint := 0;
BEGIN
    IF NOT _order_flow._citus_coordinator() OR NOT EXISTS (SELECT 1 FROM _order_flow._citus_tables()) THEN
        RETURN 0;
    END IF;
    IF to_regclass('order_flow_citus.fold_progress') IS NULL THEN
        CREATE TABLE order_flow_citus.fold_progress (folded_until timestamptz NOT NULL);
        INSERT INTO order_flow_citus.fold_progress VALUES ('-infinity');
    END IF;
    EXECUTE 'SELECT folded_until FROM order_flow_citus.fold_progress' INTO lo;
    EXECUTE $q$
        SELECT bool_or(NOT r.success OR split_part(r.result, '|', 1) <> '0'),
               min(nullif(split_part(r.result, '|', 2), '')::timestamptz)
          FROM run_command_on_all_nodes($c$
               SELECT (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database())
                      || '|' || coalesce((SELECT min(xact_start)::text FROM pg_stat_activity
                                           WHERE datname = current_database() AND pid <> pg_backend_pid()
                                             AND backend_type NOT IN ('autovacuum worker', 'walsender')), '')$c$) r$q$
       INTO held, hi;
    hi := least(t1, coalesce(hi, t1));
    IF held THEN
        hi := lo;
    END IF;
    IF catch_up THEN
        lo := '-infinity';
    END IF;

    FOR g IN SELECT * FROM _order_flow._citus_tables() LOOP
        EXECUTE format('INSERT INTO order_flow.citus_fold_stage
                            (order_key, id, seq, action, from_state, to_state, occurred_at, details)
                        SELECT %s, e.id, e.seq, e.action, e.from_state, e.to_state, e.occurred_at, e.details
                          FROM %s e
                         WHERE (e.dist_key, e.order_key) IN (SELECT x.dist_key, x.order_key FROM %s x
                                                              WHERE x.recorded_at >= $1 AND x.recorded_at < $2)',
                       g.keyexpr, g.log, g.log)
           USING lo - interval '100 milliseconds', hi;
    END LOOP;
    FOR keys IN
        SELECT array_agg(k.order_key ORDER BY k.order_key)
          FROM (SELECT c.order_key, (row_number() OVER (ORDER BY c.order_key) - 1) / 5000 AS batch
                  FROM (SELECT DISTINCT s.order_key FROM order_flow.citus_fold_stage s) c) k
         GROUP BY k.batch ORDER BY k.batch
    LOOP
        n := n + _order_flow._metrics_fold_orders(keys);
    END LOOP;
    DELETE FROM order_flow.citus_fold_stage;
    EXECUTE 'UPDATE order_flow_citus.fold_progress SET folded_until = greatest(folded_until, $1)' USING hi;
    RETURN n;
END
$$;

/*
 * _citus_fold_pass(): the coordinator scheduler's fold of the distributed
 * tables' orders, at each of its passes (at least every naptime: no commit
 * on a worker asks the coordinator's scheduler to fold), at most once a
 * second, and never queued behind another fold.  A failure is logged; the
 * next pass tries again.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_fold_pass() RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last timestamptz;
BEGIN
    IF NOT _order_flow._citus_coordinator() THEN
        RETURN 0;
    END IF;
    IF to_regclass('order_flow_citus.fold_progress') IS NOT NULL THEN
        EXECUTE 'SELECT max(folded_until) FROM order_flow_citus.fold_progress' INTO last;
        IF last > clock_timestamp() - interval '1 second' THEN
            RETURN 0;
        END IF;
    END IF;
    PERFORM 1 FROM order_flow.fold_progress FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN 0;               -- a fold is under way
    END IF;
    RETURN _order_flow._citus_metrics_fold(false);
EXCEPTION WHEN OTHERS THEN
    RAISE WARNING 'order_flow: could not fold the distributed tables'' orders into the metrics: %', SQLERRM;
    RETURN 0;
END
$$;

/*
 * _citus_log() and _citus_heads(): on a Citus coordinator, the events and
 * chain heads of the distributed tables, read through Citus (each worker
 * scans its shards), keyed as in the rollup (tenant/key for a table
 * distributed by tenant), for the views that read the log or the heads
 * themselves (state_durations, delay_events, order_timeline,
 * stale_orders); elsewhere
 * both return nothing at once.  They run as the extension's owner, like
 * the views' own reads, return only what those views show (an event's
 * exception type and hours lost, not its details), and only to a caller
 * who may read one of those views: whoever may read the view may call
 * them (a view's functions run with its reader's rights).
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_log()
RETURNS TABLE (order_key text, seq bigint, action text, from_state text, to_state text,
               occurred_at timestamptz, exception_type text, hours_lost float8)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
BEGIN
    IF to_regnamespace('order_flow_citus') IS NULL
       OR NOT (_order_flow._caller_may_read('order_flow.state_durations')
               OR _order_flow._caller_may_read('order_flow.delay_events')) THEN
        RETURN;
    END IF;
    FOR g IN SELECT * FROM _order_flow._citus_tables() LOOP
        RETURN QUERY EXECUTE format('SELECT %s, e.seq, e.action, e.from_state, e.to_state, e.occurred_at,
                                            nullif(e.details->>''exception_type'', ''''),
                                            _order_flow._metric_number(e.details->''hours_lost'')
                                       FROM %s e', g.keyexpr, g.log);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION _order_flow._citus_heads()
RETURNS TABLE (order_key text, tbl text, workflow text, state text, customer_key text, created_at timestamptz,
               contract_signed_at timestamptz, warehouse_confirmed_at timestamptz,
               finance_approved_at timestamptz, shipped_at timestamptz, entered_at timestamptz,
               reminder_level integer, attributes jsonb)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
BEGIN
    IF to_regnamespace('order_flow_citus') IS NULL
       OR NOT (_order_flow._caller_may_read('order_flow.order_timeline')
               OR _order_flow._caller_may_read('order_flow.state_durations')
               OR _order_flow._caller_may_read('order_flow.stale_orders')) THEN
        RETURN;
    END IF;
    FOR g IN SELECT * FROM _order_flow._citus_tables() LOOP
        RETURN QUERY EXECUTE format('SELECT %s, e.tbl, e.workflow, e.state, e.customer_key, e.created_at,
                                            e.contract_signed_at, e.warehouse_confirmed_at,
                                            e.finance_approved_at, e.shipped_at, e.entered_at,
                                            e.reminder_level, e.attributes
                                       FROM %s e', g.keyexpr, g.head);
    END LOOP;
END
$$;

/* _citus_pending(): the distributed tables' open notifications, for pending_acks (as _citus_log()). */
CREATE OR REPLACE FUNCTION _order_flow._citus_pending()
RETURNS TABLE (id bigint, order_key text, department text, level integer, deadline timestamptz, kind text,
               from_state text, to_state text, payload jsonb, created_at timestamptz)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    g record;
BEGIN
    IF to_regnamespace('order_flow_citus') IS NULL
       OR NOT _order_flow._caller_may_read('order_flow.pending_acks') THEN
        RETURN;
    END IF;
    FOR g IN SELECT * FROM _order_flow._citus_tables() LOOP
        RETURN QUERY EXECUTE format('SELECT e.id, %s, e.department, e.level, e.deadline, e.kind, e.from_state,
                                            e.to_state, e.payload, e.created_at
                                       FROM %s e WHERE e.status = ''pending''', g.keyexpr, g.notif);
    END LOOP;
END
$$;

/*
 * _citus_verify(only_key): what verify_audit() adds on a Citus coordinator
 * with distributed managed tables -- citus_verify_audit()'s problems (of
 * that order only, when given), each naming its table.  Nothing elsewhere.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_verify(only_key text)
RETURNS TABLE (order_key text, event_id bigint, problem text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
BEGIN
    IF to_regnamespace('order_flow_citus') IS NULL OR NOT _order_flow._citus_coordinator()
       OR NOT EXISTS (SELECT 1 FROM _order_flow._citus_tables()) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT v.order_key, v.event_id, coalesce(v.tbl || ': ', '') || v.problem
      FROM order_flow.citus_verify_audit() v
     WHERE only_key IS NULL OR v.order_key = only_key;
END
$$;

/*
 * _citus_repair_drift(...): repair_drift() of an order of a distributed
 * table, through the coordinator (its checks of the caller and the note
 * made before): the order's head beside its shard is locked, the drift
 * appended to its chain there, and the head moved to the row's state.
 */
CREATE OR REPLACE FUNCTION _order_flow._citus_repair_drift(tbl regclass, key_column name, status_column name,
                                                        workflow text, tbl_name text, order_key text, note text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    h record;
    row_state text;
    id_ bigint;
    stale timestamptz;
    cur text;
BEGIN
    SELECT * INTO h FROM _order_flow._citus_only_head(order_key, tbl);
    EXECUTE format('SELECT state FROM %s WHERE dist_key = $1::%s AND order_key = $2 FOR UPDATE',
                   h.head, h.dist_type)
       INTO cur USING h.dist, order_key;
    SELECT x.s INTO row_state
      FROM _order_flow._read_as_owner(tbl, key_column, status_column, NULL, '{}', order_key) x
     WHERE x.k = order_key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % not found in %', order_key, tbl USING ERRCODE = 'P0002';
    END IF;
    IF row_state IS NOT DISTINCT FROM cur THEN
        RAISE EXCEPTION 'order % has not drifted: its row and its chain agree on "%"', order_key, row_state
            USING ERRCODE = '55000', CONSTRAINT = 'order_flow_no_drift';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.state s WHERE s.workflow = _citus_repair_drift.workflow
                                                      AND s.state = row_state) THEN
        RAISE EXCEPTION '"%" is not a state of workflow "%"', row_state, workflow USING ERRCODE = '22P02',
            CONSTRAINT = 'order_flow_unknown_state';
    END IF;
    id_ := _order_flow._citus_append_event(order_key, 'drift', cur, row_state,
                                           jsonb_build_object('table', tbl_name, 'note', note), NULL);
    SELECT now() + st.max_dwell * p.factor INTO stale
      FROM order_flow.state st
      JOIN order_flow.reminder_policy p ON p.workflow = st.workflow AND p.level = 1
     WHERE st.workflow = _citus_repair_drift.workflow AND st.state = row_state AND st.category <> 'terminal';
    EXECUTE format('UPDATE %s SET state = $1, held_from = NULL, entered_at = $2, reminder_level = 0,
                                  stale_after = $3
                     WHERE dist_key = $4::%s AND order_key = $5', h.head, h.dist_type)
       USING row_state, now(), stale, h.dist, order_key;
    RETURN id_;
END
$$;
