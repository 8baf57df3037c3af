/*
 * src/sql/status.sql
 *
 * The status type's idempotent part: position, min/max, create_status().
 * The type itself, its I/O, operators, operator classes and casts are
 * created once (pre_install/status.sql).
 */

CREATE OR REPLACE FUNCTION _order_flow.status_position(order_flow.status) RETURNS integer
    AS 'MODULE_PATHNAME', 'status_position' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow.status_larger(order_flow.status, order_flow.status) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_larger' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION _order_flow.status_smaller(order_flow.status, order_flow.status) RETURNS order_flow.status
    AS 'MODULE_PATHNAME', 'status_smaller' LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

/* min/max live in pg_catalog with the operators: found whatever the search_path */
CREATE OR REPLACE AGGREGATE pg_catalog.max(order_flow.status) (
    SFUNC = _order_flow.status_larger, STYPE = order_flow.status,
    COMBINEFUNC = _order_flow.status_larger, SORTOP = OPERATOR(pg_catalog.>), PARALLEL = SAFE);

CREATE OR REPLACE AGGREGATE pg_catalog.min(order_flow.status) (
    SFUNC = _order_flow.status_smaller, STYPE = order_flow.status,
    COMBINEFUNC = _order_flow.status_smaller, SORTOP = OPERATOR(pg_catalog.<), PARALLEL = SAFE);



/*
 * create_status(label, after, before): add a name to the dictionary.  With
 * neither neighbour it goes after the last name; with one or both it is
 * placed between them (positions never move, so a gap is halved).
 */
CREATE OR REPLACE FUNCTION order_flow.create_status(label text, after text DEFAULT NULL,
                                         before text DEFAULT NULL)
RETURNS order_flow.status
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lo bigint;
    hi bigint;
    pos bigint;
BEGIN
    IF label IS NULL THEN
        RAISE EXCEPTION 'status name must not be null' USING ERRCODE = '22004';
    END IF;
    IF EXISTS (SELECT 1 FROM order_flow.status_label l WHERE l.label = create_status.label) THEN
        RAISE EXCEPTION 'status "%" already exists', label USING ERRCODE = '42710';
    END IF;
    LOCK TABLE order_flow.status_label IN SHARE ROW EXCLUSIVE MODE;
    IF after IS NULL AND before IS NULL THEN
        SELECT coalesce(max(sort_position), 0) INTO lo FROM order_flow.status_label;
        pos := lo + 65536;
    ELSE
        IF after IS NOT NULL THEN
            SELECT sort_position INTO lo FROM order_flow.status_label l WHERE l.label = after;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'status "%" does not exist', after USING ERRCODE = '22P02';
            END IF;
        END IF;
        IF before IS NOT NULL THEN
            SELECT sort_position INTO hi FROM order_flow.status_label l WHERE l.label = before;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'status "%" does not exist', before USING ERRCODE = '22P02';
            END IF;
        END IF;
        IF after IS NOT NULL THEN
            /* right after "after": up to the next existing name */
            IF hi IS NOT NULL AND hi <= lo THEN
                RAISE EXCEPTION 'status "%" does not sort before "%"', after, before USING ERRCODE = '22023';
            END IF;
            SELECT min(sort_position) INTO hi FROM order_flow.status_label WHERE sort_position > lo;
            hi := COALESCE(hi, lo + 131072);
        ELSE
            /* right before "before": down to the previous existing name */
            SELECT max(sort_position) INTO lo FROM order_flow.status_label WHERE sort_position < hi;
            lo := COALESCE(lo, -2147483648);
        END IF;
        IF hi <= lo THEN
            RAISE EXCEPTION 'status "%" does not sort before "%"', after, before USING ERRCODE = '22023';
        END IF;
        IF hi - lo < 2 THEN
            RAISE EXCEPTION 'no room left between "%" and "%"', after, before
                USING ERRCODE = '54000',
                      HINT = 'Positions never move; create the status at another place.';
        END IF;
        pos := lo + (hi - lo) / 2;
    END IF;
    IF pos > 2147483647 THEN
        RAISE EXCEPTION 'status dictionary is full' USING ERRCODE = '54000';
    END IF;
    INSERT INTO order_flow.status_label(label, sort_position) VALUES (label, pos::integer);
    RETURN label::order_flow.status;
END
$$;

/*
 * _restore_lock(): the one lock under which a restore's loads of the
 * dictionary and of rows waiting for it (restore_pending) take turns --
 * the same lock as the dictionary's reload.  Each statement after it must
 * see what the previous holder committed, so READ COMMITTED is required.
 */
CREATE OR REPLACE FUNCTION _order_flow._restore_lock() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'a restore of order_flow''s tables needs READ COMMITTED, not %',
            current_setting('transaction_isolation')
            USING ERRCODE = '55000',
                  HINT = 'Restore into a database whose default_transaction_isolation is read committed.';
    END IF;
    PERFORM pg_advisory_xact_lock('order_flow.status_label'::regclass::oid::bigint);
END
$$;

COMMENT ON FUNCTION _order_flow._restore_lock() IS
    'Internal: the restore''s one lock (READ COMMITTED required)';

/*
 * _restore_label(label, position): during a restore, the dictionary entry
 * a status value carries (pg_dump writes a status as "label@position",
 * see status_out).  A parallel restore may load a managed table before the
 * dictionary itself; the value then creates its name at the position it
 * had, and the dictionary's own row, when it comes, merges as identical.
 * One at a time (the same lock as the dictionary's reload).  Returns the
 * position of label.
 */
CREATE OR REPLACE FUNCTION _order_flow._restore_label(label text, pos integer) RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    have integer;
    holder text;
BEGIN
    PERFORM _order_flow._restore_lock();
    SELECT l.sort_position INTO have FROM order_flow.status_label l WHERE l.label = _restore_label.label;
    IF FOUND THEN
        RETURN have;
    END IF;
    SELECT l.label INTO holder FROM order_flow.status_label l WHERE l.sort_position = pos;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot restore state name "%" at sort position %: "%" is there', label, pos, holder
            USING ERRCODE = '23505', CONSTRAINT = 'status_label_sort_position_key',
                  HINT = 'Restore into a database whose order_flow has only the shipped states.';
    END IF;
    INSERT INTO order_flow.status_label (label, sort_position) VALUES (label, pos);
    RETURN pos;
END
$$;

COMMENT ON FUNCTION _order_flow._restore_label(text, integer) IS
    'Internal: during a restore, enter a state name at the sort position its dumped status values carry';
