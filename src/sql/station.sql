/*
 * src/sql/station.sql
 *
 * The shipping station: station_scan(), station_ship(), the waybill
 * pool, freight rules, logistics updates and the station heatmap.
 */

/* Station helpers. */
CREATE OR REPLACE FUNCTION _order_flow._station_event(order_key text, step text, detail jsonb)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    who text := order_flow.current_actor();
    prev timestamptz;
    now_ timestamptz := clock_timestamp();
BEGIN
    SELECT max(e.at) INTO prev FROM order_flow.station_event e WHERE e.operator = who;
    INSERT INTO order_flow.station_event (order_key, operator, station, step, at, dwell, detail)
    VALUES (order_key, who, NULLIF(current_setting('order_flow.station', true), ''), step, now_,
            now_ - prev, detail);
END
$$;

CREATE OR REPLACE FUNCTION _order_flow._owner_move(tbl regclass, order_key text, to_state text, note text, details jsonb)
    RETURNS void AS 'MODULE_PATHNAME', 'order_flow_owner_move' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._stock(source regclass, op text, sku text, qty integer)
    RETURNS integer AS 'MODULE_PATHNAME', 'order_flow_stock' LANGUAGE C;

CREATE OR REPLACE FUNCTION _order_flow._stock_source() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE((SELECT value FROM order_flow.station_config WHERE key = 'stock_source'),
                    'order_flow.stock')::regclass::text
$$;

CREATE OR REPLACE FUNCTION _order_flow._available(sku text) RETURNS integer
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN COALESCE(_order_flow._stock(_order_flow._stock_source()::regclass, 'read', sku, 0), 0);
END
$$;

/* Check digit of a waybill serial number: none, mod 7, or mod 11 (UPU S10 weights). */
CREATE OR REPLACE FUNCTION order_flow.waybill_check_digit(method text, serial bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s text := lpad(serial::text, 8, '0');
    w integer[] := ARRAY[8, 6, 4, 2, 3, 5, 9, 7];
    total integer := 0;
    d integer;
BEGIN
    IF method = 'none' THEN
        RETURN '';
    ELSIF method = 'mod7' THEN
        RETURN (serial % 7)::text;
    ELSIF method = 'mod11' THEN
        s := right(s, 8);
        FOR i IN 1..8 LOOP
            total := total + substr(s, i, 1)::integer * w[i];
        END LOOP;
        d := 11 - total % 11;
        RETURN CASE d WHEN 10 THEN '0' WHEN 11 THEN '5' ELSE d::text END;
    END IF;
    RAISE EXCEPTION 'unknown check digit method "%"', method USING ERRCODE = '22023';
END
$$;

CREATE OR REPLACE FUNCTION _order_flow._scan_remaining(order_key text) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', l.sku, 'name', s.name, 'qty', l.qty,
                                                 'scanned', l.scanned, 'left', l.qty - l.scanned)
                              ORDER BY l.sku) FILTER (WHERE l.scanned < l.qty), '[]')
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = _scan_remaining.order_key
$$;

/*
 * station_scan(order_key, barcode, qty): match a scan to an order line.
 * Returns what is left to scan and any warning (unknown_barcode,
 * not_on_order, over_scan, prohibited, stock_short with in-stock
 * substitutes).  A warned scan is not counted; every scan is a station
 * event (warnings as errors) for the heat map.
 */
CREATE OR REPLACE FUNCTION order_flow.station_scan(order_key text, barcode text, qty integer DEFAULT 1)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    st text;
    art record;
    line record;
    warning text;
    message text;
    subs jsonb := '[]';
    avail integer;
    result jsonb;
BEGIN
    IF order_key IS NULL OR barcode IS NULL OR qty IS NULL THEN
        RAISE EXCEPTION 'order key, barcode and quantity must not be null' USING ERRCODE = '22004';
    END IF;
    IF qty <= 0 OR qty > 10000 THEN
        RAISE EXCEPTION 'scan quantity % is out of range (1 to 10000)', qty USING ERRCODE = '22023',
            CONSTRAINT = 'order_flow_station_quantity';
    END IF;
    SELECT t.state INTO st FROM order_flow.tracked_order t WHERE t.order_key = order_key AND t.tbl IS NOT NULL;
    IF NOT FOUND THEN
        SELECT (h.row_).state INTO st FROM _order_flow._citus_head(order_key) h WHERE (h.row_).tbl IS NOT NULL;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', order_key USING ERRCODE = 'P0002',
            CONSTRAINT = 'order_flow_unknown_order';
    END IF;
    IF st NOT IN ('picking', 'packed') THEN
        RAISE EXCEPTION 'order % is %, not being picked or packed', order_key, st USING ERRCODE = '55000',
            CONSTRAINT = 'order_flow_station_not_ready';
    END IF;

    SELECT * INTO art FROM order_flow.sku s WHERE s.barcode = station_scan.barcode;
    IF NOT FOUND THEN
        warning := 'unknown_barcode';
        message := format('Barcode %s is unknown. Put the item aside and call your supervisor.', barcode);
    ELSE
        SELECT * INTO line FROM order_flow.order_line l
         WHERE l.order_key = station_scan.order_key AND l.sku = art.sku FOR UPDATE;
        IF NOT FOUND THEN
            warning := 'not_on_order';
            message := format('%s (%s) is not on order %s. Put it back.', art.name, art.sku, order_key);
        ELSIF art.prohibited THEN
            warning := 'prohibited';
            message := format('%s (%s) is prohibited goods and cannot be shipped.', art.name, art.sku);
        ELSIF line.scanned + qty > line.qty THEN
            warning := 'over_scan';
            message := format('Only %s of %s needed, %s already scanned.', line.qty, art.sku, line.scanned);
        ELSE
            UPDATE order_flow.order_line l SET scanned = l.scanned + qty
             WHERE l.order_key = station_scan.order_key AND l.sku = art.sku;
            avail := _order_flow._available(art.sku);
            IF avail < line.qty THEN
                warning := 'stock_short';
                message := format('Stock shows %s of %s, the order needs %s.', avail, art.sku, line.qty);
                SELECT COALESCE(jsonb_agg(jsonb_build_object('sku', s.sku, 'name', s.name,
                                                             'available', _order_flow._available(s.sku))
                                          ORDER BY s.sku), '[]')
                  INTO subs
                  FROM order_flow.sku s
                 WHERE s.sku = ANY (art.substitutes) AND NOT s.prohibited
                   AND _order_flow._available(s.sku) >= line.qty;
            END IF;
        END IF;
    END IF;

    result := jsonb_build_object(
        'ok', warning IS NULL OR warning = 'stock_short',
        'order_key', order_key,
        'sku', art.sku,
        'warning', warning,
        'message', COALESCE(message, 'OK'),
        'remaining', _order_flow._scan_remaining(order_key));
    result := result || jsonb_build_object('complete', jsonb_array_length(result->'remaining') = 0);
    IF warning = 'stock_short' THEN
        result := result || jsonb_build_object('substitutes', subs);
    END IF;
    PERFORM _order_flow._station_event(order_key,
        CASE WHEN warning IS NULL OR warning = 'stock_short' THEN 'scan' ELSE 'error' END,
        jsonb_build_object('barcode', barcode, 'qty', qty, 'warning', warning));
    RETURN result;
END
$$;

COMMENT ON FUNCTION order_flow.station_scan(text, text, integer) IS
    'Station: match a scanned barcode to the order; returns what is left and any warning';

/*
 * station_ship(order_key, package_preset): all checks, then ship.  Refuses
 * unless every line is scanned, nothing is prohibited, the preset holds the
 * weight and stock suffices; locks and decrements stock, computes freight
 * by rule, takes a waybill number, moves the order to shipped through the
 * normal transition path, and returns the label.  All or nothing.
 */
CREATE OR REPLACE FUNCTION order_flow.station_ship(order_key text, package_preset text)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    o record;
    p record;
    rule record;
    pool record;
    src text := _order_flow._stock_source();
    bad text;
    weight numeric;
    fee numeric;
    serial bigint;
    waybill text;
    region text;
    items jsonb;
    label jsonb;
    r record;
    avail integer;
BEGIN
    IF order_key IS NULL OR package_preset IS NULL THEN
        RAISE EXCEPTION 'order key and package preset must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO p FROM order_flow.package_preset x WHERE x.code = package_preset;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown package preset "%"', package_preset USING ERRCODE = '22023',
            HINT = 'Choose one of the presets in order_flow.package_preset.',
            CONSTRAINT = 'order_flow_station_preset';
    END IF;
    SELECT * INTO o FROM order_flow.tracked_order t
     WHERE t.order_key = order_key AND t.tbl IS NOT NULL FOR UPDATE;
    IF NOT FOUND THEN
        /* an order of a distributed table: its move below locks it on its shard */
        SELECT (h.row_).* INTO o FROM _order_flow._citus_head(order_key) h WHERE (h.row_).tbl IS NOT NULL;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'order % does not exist', order_key USING ERRCODE = 'P0002',
            CONSTRAINT = 'order_flow_unknown_order';
    END IF;
    IF o.state NOT IN ('picking', 'packed') THEN
        RAISE EXCEPTION 'order % is %, not ready to ship', order_key, o.state USING ERRCODE = '55000',
            HINT = 'Only picked or packed orders are shipped at the station.',
            CONSTRAINT = 'order_flow_station_not_ready';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM order_flow.order_line l WHERE l.order_key = order_key) THEN
        RAISE EXCEPTION 'order % has no lines', order_key USING ERRCODE = '55000',
            CONSTRAINT = 'order_flow_station_no_lines';
    END IF;
    SELECT string_agg(format('%s (%s of %s scanned)', l.sku, l.scanned, l.qty), ', ' ORDER BY l.sku)
      INTO bad FROM order_flow.order_line l WHERE l.order_key = order_key AND l.scanned < l.qty;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'order % is not fully scanned', order_key USING ERRCODE = '55000',
            DETAIL = 'Still to scan: ' || bad || '.', CONSTRAINT = 'order_flow_station_unscanned';
    END IF;
    SELECT string_agg(l.sku, ', ' ORDER BY l.sku) INTO bad
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = order_key AND s.prohibited;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'order % contains prohibited goods', order_key USING ERRCODE = '23514',
            DETAIL = 'Prohibited: ' || bad || '.', CONSTRAINT = 'order_flow_station_prohibited';
    END IF;
    SELECT sum(l.qty * s.weight_kg) + p.tare_kg INTO weight
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = order_key;
    IF weight > p.max_weight_kg THEN
        RAISE EXCEPTION 'order % weighs % kg, more than preset % allows (% kg)', order_key, weight,
            p.code, p.max_weight_kg USING ERRCODE = '23514',
            HINT = 'Choose a larger package preset.', CONSTRAINT = 'order_flow_station_overweight';
    END IF;

    /* stock: lock in a fixed order so two stations never deadlock, then check and decrement */
    FOR r IN SELECT l.sku, l.qty FROM order_flow.order_line l WHERE l.order_key = order_key ORDER BY l.sku LOOP
        avail := _order_flow._stock(src::regclass, 'lock', r.sku, 0);
        IF COALESCE(avail, 0) < r.qty THEN
            RAISE EXCEPTION 'stock short for % on order %: % available, % needed', r.sku, order_key,
                COALESCE(avail, 0), r.qty USING ERRCODE = '23514',
                CONSTRAINT = 'order_flow_station_stock_short';
        END IF;
    END LOOP;
    FOR r IN SELECT l.sku, l.qty FROM order_flow.order_line l WHERE l.order_key = order_key ORDER BY l.sku LOOP
        PERFORM _order_flow._stock(src::regclass, 'take', r.sku, r.qty);
    END LOOP;

    region := o.attributes->>'region';
    SELECT f.*, f.base_fee + f.per_kg * weight AS fee INTO rule
      FROM order_flow.freight_rule f
     WHERE (f.region = region OR f.region = '*') AND weight >= f.min_kg AND weight < f.max_kg
     ORDER BY f.base_fee + f.per_kg * weight, (f.region = '*'), f.carrier
     LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no freight rule for region % and % kg', COALESCE(region, '(none)'), weight
            USING ERRCODE = 'P0002', HINT = 'Add a row to order_flow.freight_rule.',
                  CONSTRAINT = 'order_flow_station_no_freight_rule';
    END IF;
    fee := round(rule.fee, 2);

    UPDATE order_flow.waybill_pool w SET next_no = w.next_no + 1
     WHERE w.carrier = rule.carrier AND w.next_no <= w.last_no
    RETURNING w.*, w.next_no - 1 AS taken INTO pool;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'waybill pool of carrier % is exhausted', rule.carrier USING ERRCODE = '55000',
            HINT = 'Load a new number range into order_flow.waybill_pool.',
            CONSTRAINT = 'order_flow_station_waybills_exhausted';
    END IF;
    serial := pool.taken;
    waybill := pool.prefix || lpad(serial::text, pool.digits, '0')
               || order_flow.waybill_check_digit(pool.check_digit, serial);

    SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'name', s.name, 'qty', l.qty) ORDER BY l.sku)
      INTO items
      FROM order_flow.order_line l JOIN order_flow.sku s ON s.sku = l.sku
     WHERE l.order_key = order_key;
    label := jsonb_build_object(
        'waybill', waybill, 'carrier', rule.carrier, 'order_key', order_key,
        'customer', o.customer_key,
        'addressee', (SELECT COALESCE(jsonb_object_agg(k, v), '{}') FROM jsonb_each(o.attributes) a(k, v)
                       WHERE k IN ('region', 'addressee', 'contact', 'phone', 'address', 'city', 'postcode')),
        'package', p.code, 'weight_kg', weight, 'freight', fee, 'items', items,
        'shipped_at', clock_timestamp());

    INSERT INTO order_flow.shipment (order_key, waybill, carrier, package_preset, weight_kg, freight,
                                     label, operator, station)
    VALUES (order_key, waybill, rule.carrier, p.code, weight, fee, label, order_flow.current_actor(),
            NULLIF(current_setting('order_flow.station', true), ''));
    PERFORM _order_flow._station_event(order_key, 'preset', jsonb_build_object('package', p.code));
    /* the managed table's own triggers run with its owner's rights, not ours */
    PERFORM _order_flow._owner_move(o.tbl::regclass, order_key, 'shipped', 'shipped at station',
                                  jsonb_build_object('waybill', waybill, 'carrier', rule.carrier,
                                                     'freight', fee, 'weight_kg', weight));
    PERFORM _order_flow._append_event(order_key, 'ship', 'shipped', 'shipped',
                                     jsonb_build_object('waybill', waybill, 'carrier', rule.carrier,
                                                        'package', p.code, 'weight_kg', weight), NULL);
    PERFORM _order_flow._station_event(order_key, 'ship', jsonb_build_object('waybill', waybill));
    RETURN label;
END
$$;

COMMENT ON FUNCTION order_flow.station_ship(text, text) IS
    'Station: check, lock and decrement stock, rate freight, take a waybill, ship; returns the label';

/* Operation right without decision right: EXECUTE on the two station functions only. */
CREATE OR REPLACE FUNCTION order_flow.grant_station_operator(operator regrole) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF operator IS NULL THEN
        RAISE EXCEPTION 'role must not be null' USING ERRCODE = '22004';
    END IF;
    EXECUTE format('GRANT EXECUTE ON FUNCTION order_flow.station_scan(text, text, integer), '
                   'order_flow.station_ship(text, text) TO %s', operator);
END
$$;

/*
 * The heat map: a failed scan (a wrong item, a wrong quantity: logged as
 * step 'error') is a scan that went wrong, so it counts as a scan, with
 * its time, and in that step's errors.  (1.0 and 1.1 gave errors a row of
 * their own, whose error count was its step count, and 0 errors to every
 * real step.)
 */
CREATE OR REPLACE VIEW order_flow.station_heatmap AS
SELECT e.operator,
       e.step,
       count(*) AS steps,
       avg(extract(epoch FROM e.dwell)) AS mean_dwell_seconds,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM e.dwell)) AS p90_dwell_seconds,
       count(*) FILTER (WHERE e.failed) AS errors
  FROM (SELECT x.operator, CASE WHEN x.step = 'error' THEN 'scan' ELSE x.step END AS step,
               x.step = 'error' AS failed, x.dwell
          FROM order_flow.station_event x) e
 GROUP BY e.operator, e.step;

COMMENT ON VIEW order_flow.station_heatmap IS
    'Per operator and station step (scan, preset, ship): count, mean and p90 dwell time since the previous step, and how many of them went wrong (failed scans)';

DO $stcfg$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['package_preset', 'freight_rule', 'waybill_pool', 'station_config']
    LOOP
        EXECUTE format('CREATE OR REPLACE TRIGGER %I BEFORE INSERT ON order_flow.%I
                        FOR EACH ROW EXECUTE FUNCTION _order_flow._restore_merge()', t || '_merge', t);
        EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER INSERT OR DELETE ON order_flow.%I
                        FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_config()', t || '_audit', t);
        IF t <> 'waybill_pool' THEN
            EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER UPDATE ON order_flow.%I
                            FOR EACH ROW EXECUTE FUNCTION _order_flow._audit_config()', t || '_audit_update', t);
        END IF;
    END LOOP;
END
$stcfg$;

/* Taking a waybill number moves next_no: that is use, not configuration. */
CREATE OR REPLACE TRIGGER waybill_pool_audit_update AFTER UPDATE ON order_flow.waybill_pool
    FOR EACH ROW
    WHEN ((OLD.carrier, OLD.prefix, OLD.last_no, OLD.digits, OLD.check_digit)
          IS DISTINCT FROM (NEW.carrier, NEW.prefix, NEW.last_no, NEW.digits, NEW.check_digit))
    EXECUTE FUNCTION _order_flow._audit_config();

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
    PERFORM _order_flow._append_event(sh.order_key, 'logistics', NULL, NULL,
        jsonb_build_object('tracking_no', tracking_no, 'status', status, 'location', location), at);
    SELECT t.state, t.tbl::regclass INTO st, tbl FROM order_flow.tracked_order t
     WHERE t.order_key = sh.order_key;
    IF NOT FOUND THEN
        SELECT (h.row_).state, (h.row_).tbl::regclass INTO st, tbl FROM _order_flow._citus_head(sh.order_key) h;
    END IF;
    IF status IN ('in_transit', 'delivered') AND st = 'shipped' THEN
        PERFORM _order_flow._owner_move(tbl, sh.order_key, 'in_transit', 'carrier trace', '{}');
        st := 'in_transit';
    END IF;
    IF status = 'delivered' AND st = 'in_transit' THEN
        PERFORM _order_flow._owner_move(tbl, sh.order_key, 'delivered', 'carrier trace', '{}');
    END IF;
    RETURN id_;
END
$$;

COMMENT ON FUNCTION order_flow.logistics_update(text, text, timestamptz, text) IS
    'Record a carrier trace event; in_transit and delivered move the order along';
