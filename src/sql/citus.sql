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
    IF (SELECT groupid FROM pg_dist_local_group) <> 0 THEN
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
    IF (SELECT groupid FROM pg_dist_local_group) = 0 THEN
        RAISE EXCEPTION 'the coordinator''s catalogue is the original: load it on workers only'
            USING ERRCODE = '0A000';
    END IF;
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

CREATE OR REPLACE FUNCTION order_flow.citus_sync_catalogue() RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb := '{}';
    t text;
    rows jsonb;
    bad text;
    nodes integer;
BEGIN
    PERFORM _order_flow._citus_require();
    FOREACH t IN ARRAY _order_flow._citus_catalogue_tables() LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(c)), ''[]'') FROM order_flow.%I c', t) INTO rows;
        doc := doc || jsonb_build_object(t, rows);
    END LOOP;
    EXECUTE 'SELECT count(*), string_agg(format(''%s:%s: %s'', nodename, nodeport, result), ''; '')
                    FILTER (WHERE NOT success)
               FROM run_command_on_workers(format(''SELECT _order_flow._citus_load_catalogue(%L)'', $1))'
       INTO nodes, bad USING doc;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'the catalogue could not be copied to every worker' USING ERRCODE = '58000',
            DETAIL = bad, HINT = 'Fix the worker and call order_flow.citus_sync_catalogue() again.';
    END IF;
    RETURN nodes;
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
            /* a sequence of its own: Citus gives each node a range of it, so ids are unique */
            EXECUTE format('CREATE SEQUENCE %s AS bigint', seq);
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
 * table of the cluster.  Each worker walks the chains of the shards it
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
    'On a Citus coordinator: verify_audit() over every distributed managed table, each worker checking the chains of its shards; no row means intact';
