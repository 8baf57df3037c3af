/*
 * src/sql/broadcast.sql
 *
 * The status broadcast: business calendars and deadlines,
 * acknowledge(), escalation and reminders, pending_acks and stale_orders,
 * and the broadcast configuration's rules.
 */

/* ------------------------------------------------------------------ */
/* Business calendars, acknowledgements, escalation and reminders.     */
/* ------------------------------------------------------------------ */

/*
 * business_deadline(calendar, start, span): the instant at which span of
 * working time has elapsed from start in the calendar (working hours per
 * weekday in its time zone, holidays skipped).  Always-open calendars add
 * span to start.
 */
CREATE OR REPLACE FUNCTION order_flow.business_deadline(calendar text, start timestamptz, span interval)
RETURNS timestamptz
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    cal record;
    left_s double precision;
    local_ts timestamp;
    day date;
    h record;
    win_start timestamptz;
    win_len double precision;
    guard integer := 0;
BEGIN
    IF calendar IS NULL OR start IS NULL OR span IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO cal FROM order_flow.calendar c WHERE c.calendar = calendar;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'calendar "%" does not exist', calendar USING ERRCODE = '42704';
    END IF;
    IF cal.always_open THEN
        RETURN start + span;
    END IF;
    left_s := extract(epoch FROM span);
    local_ts := start AT TIME ZONE cal.time_zone;
    day := local_ts::date;
    LOOP
        guard := guard + 1;
        IF guard > 800 THEN
            RAISE EXCEPTION 'calendar "%" has no working time within two years of %', calendar, start
                USING ERRCODE = '22023';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM order_flow.calendar_holiday x
                        WHERE x.calendar = cal.calendar AND x.day = day) THEN
            FOR h IN SELECT opens, closes FROM order_flow.calendar_hours x
                      WHERE x.calendar = cal.calendar AND x.isodow = extract(isodow FROM day)::integer
                      ORDER BY opens
            LOOP
                /* windows are measured in real time, so a DST change is counted right */
                win_start := greatest((day + h.opens) AT TIME ZONE cal.time_zone, start);
                win_len := extract(epoch FROM ((day + h.closes) AT TIME ZONE cal.time_zone) - win_start);
                CONTINUE WHEN win_len <= 0;
                IF left_s <= win_len THEN
                    RETURN win_start + make_interval(secs => left_s);
                END IF;
                left_s := left_s - win_len;
            END LOOP;
        END IF;
        day := day + 1;
    END LOOP;
END
$$;

COMMENT ON FUNCTION order_flow.business_deadline(text, timestamptz, interval) IS
    'When span of working time has elapsed from start in a business calendar';

CREATE OR REPLACE FUNCTION order_flow.department_deadline(department text, start timestamptz, span interval)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT order_flow.business_deadline(COALESCE((SELECT d.calendar FROM order_flow.department d
                                                  WHERE d.department = department_deadline.department),
                                                 '24x7'), start, span)
$$;

/* Calendars are validated at commit: a known time zone, working hours that
   do not overlap, and some working time unless always open. */
CREATE OR REPLACE FUNCTION _order_flow._validate_calendar() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c text := CASE WHEN TG_OP = 'DELETE' THEN OLD.calendar ELSE NEW.calendar END;
    cal record;
    bad text;
BEGIN
    SELECT * INTO cal FROM order_flow.calendar x WHERE x.calendar = c;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = cal.time_zone)
       AND NOT EXISTS (SELECT 1 FROM pg_timezone_abbrevs WHERE abbrev = cal.time_zone) THEN
        RAISE EXCEPTION 'calendar "%" has unknown time zone "%"', c, cal.time_zone USING ERRCODE = '22023';
    END IF;
    SELECT string_agg(format('day %s %s-%s overlaps %s-%s', a.isodow, a.opens, a.closes, b.opens, b.closes), '; ')
      INTO bad
      FROM order_flow.calendar_hours a JOIN order_flow.calendar_hours b
        ON a.calendar = b.calendar AND a.isodow = b.isodow AND a.opens < b.opens AND b.opens < a.closes
     WHERE a.calendar = c;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'calendar "%" has overlapping working hours', c
            USING ERRCODE = '23514', DETAIL = bad || '.';
    END IF;
    IF NOT cal.always_open AND NOT EXISTS (SELECT 1 FROM order_flow.calendar_hours x WHERE x.calendar = c) THEN
        RAISE EXCEPTION 'calendar "%" has no working hours', c USING ERRCODE = '23514',
            HINT = 'Add rows to order_flow.calendar_hours, or mark the calendar always_open.';
    END IF;
    RETURN NULL;
END
$$;

/* Escalation chains: levels 1..n without gaps, at least three. */
CREATE OR REPLACE FUNCTION _order_flow._validate_escalation() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d text := CASE WHEN TG_OP = 'DELETE' THEN OLD.department ELSE NEW.department END;
    n integer;
    mx integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM order_flow.department x WHERE x.department = d) THEN
        RETURN NULL;
    END IF;
    SELECT count(*), max(level) INTO n, mx FROM order_flow.escalation_policy p WHERE p.department = d;
    IF n < 3 OR mx <> n THEN
        RAISE EXCEPTION 'escalation chain of department "%" must have levels 1 to n without gaps, n >= 3', d
            USING ERRCODE = '23514',
                  DETAIL = format('It has %s levels, the highest being %s.', n, COALESCE(mx, 0));
    END IF;
    RETURN NULL;
END
$$;

/* A new department gets the default three-level chain. */
CREATE OR REPLACE FUNCTION _order_flow._department_defaults() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF _order_flow._loading() THEN
        RETURN NULL;
    END IF;
    INSERT INTO order_flow.escalation_policy (department, level, title, delay)
    VALUES (NEW.department, 1, 'supervisor', interval '15 minutes'),
           (NEW.department, 2, 'manager', interval '30 minutes'),
           (NEW.department, 3, 'director', interval '1 hour')
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

/* A changed "cannot wait" threshold applies to orders already waiting. */
CREATE OR REPLACE FUNCTION _order_flow._restale() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE order_flow.tracked_order t
       SET stale_after = CASE WHEN NEW.category = 'terminal' THEN NULL
                              ELSE t.entered_at + NEW.max_dwell *
                                   (SELECT p.factor FROM order_flow.reminder_policy p
                                     WHERE p.workflow = t.workflow AND p.level = t.reminder_level + 1) END
     WHERE t.workflow = NEW.workflow AND t.state = NEW.state;
    RETURN NULL;
END
$$;

/* A changed reminder policy applies to orders already waiting. */
CREATE OR REPLACE FUNCTION _order_flow._restale_policy() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE order_flow.tracked_order t
       SET stale_after = t.entered_at + s.max_dwell *
                         (SELECT p.factor FROM order_flow.reminder_policy p
                           WHERE p.workflow = t.workflow AND p.level = t.reminder_level + 1)
      FROM order_flow.state s
     WHERE s.workflow = t.workflow AND s.state = t.state AND s.category <> 'terminal'
       AND t.tbl IS NOT NULL;
    RETURN NULL;
END
$$;

/*
 * What the broadcast writes, each written in one place: the notification
 * an escalation opens and its event, a reminder, and the notification and
 * event of a need_info answer -- the same whether the batch, the
 * one-by-one fallback or a Citus node's sweep (src/sql/citus.sql) writes
 * them.  Plain SQL with every name qualified and no settings of their own,
 * so the set-based batch inlines them.
 */
CREATE OR REPLACE FUNCTION _order_flow._escalation_payload(payload jsonb, level integer, deadline timestamptz,
                                                        escalated_from bigint, title text,
                                                        overdue_since timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT payload OPERATOR(pg_catalog.||)
           pg_catalog.jsonb_build_object('level', level, 'deadline', deadline, 'escalated_from', escalated_from,
                                         'title', title, 'overdue_since', overdue_since)
$$;

CREATE OR REPLACE FUNCTION _order_flow._escalate_details(notification_id bigint, escalated_from bigint,
                                                      department text, level integer, title text,
                                                      deadline timestamptz, overdue_since timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.jsonb_build_object('notification_id', notification_id, 'escalated_from', escalated_from,
                                         'department', department, 'level', level, 'title', title,
                                         'deadline', deadline, 'overdue_since', overdue_since)
$$;

CREATE OR REPLACE FUNCTION _order_flow._remind_message(order_key text, state text, level integer,
                                                    department text, threshold interval,
                                                    waiting_since timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.jsonb_build_object('event', 'remind', 'order_key', order_key, 'state', state,
                                         'level', level, 'department', department, 'threshold', threshold,
                                         'waiting_since', waiting_since)
$$;

CREATE OR REPLACE FUNCTION _order_flow._need_info_payload(payload jsonb, department text, deadline timestamptz,
                                                       form jsonb, requested_by text,
                                                       requesting_department text, in_reply_to bigint)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT payload OPERATOR(pg_catalog.||)
           pg_catalog.jsonb_build_object('department', department, 'level', 1, 'deadline', deadline,
                                         'kind', 'need_info', 'form', form, 'requested_by', requested_by,
                                         'requesting_department', requesting_department,
                                         'in_reply_to', in_reply_to)
$$;

CREATE OR REPLACE FUNCTION _order_flow._need_info_details(notification_id bigint, department text, level integer,
                                                       form jsonb, opened bigint, for_department text)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT pg_catalog.jsonb_build_object('notification_id', notification_id, 'department', department,
                                         'level', level, 'form', form, 'opened', opened,
                                         'for_department', for_department)
$$;

/* _may_answer: who may answer the notification (a member of its department), and only once. */
CREATE OR REPLACE FUNCTION _order_flow._may_answer(id bigint, department text, status text, who text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT order_flow.is_admin()
       AND NOT EXISTS (SELECT 1 FROM order_flow.member m WHERE m.actor = who AND m.department = _may_answer.department) THEN
        RAISE EXCEPTION 'actor "%" may not answer notification % of department %', who, id, department
            USING ERRCODE = '42501',
                  HINT = 'Only members of the notified department answer it.',
                  CONSTRAINT = 'order_flow_not_member';
    END IF;
    IF status <> 'pending' THEN
        RAISE EXCEPTION 'notification % was already answered (%)', id, status
            USING ERRCODE = '55000', CONSTRAINT = 'order_flow_already_answered';
    END IF;
END
$$;

/*
 * acknowledge(): a department answers a notification, once.
 *   'ack'       -- a timestamped confirmation;
 *   'need_info' -- a structured form {"text": ..., "attachments": [...]}
 *                  that opens a notification for the originating department.
 * Returns the answered notification's id, or for need_info the id of the
 * notification opened for the originating department.
 */
CREATE OR REPLACE FUNCTION order_flow.acknowledge(notification_id bigint, response text DEFAULT 'ack',
                                       details jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
    n record;
    who text := order_flow.current_actor();
    origin text;
    window_ interval;
    nid bigint;
    dl timestamptz;
    now_ timestamptz := clock_timestamp();
    pl jsonb;
BEGIN
    IF notification_id IS NULL OR response IS NULL THEN
        RAISE EXCEPTION 'notification id and response must not be null' USING ERRCODE = '22004';
    END IF;
    IF response NOT IN ('ack', 'need_info') THEN
        RAISE EXCEPTION 'unknown response "%"', response USING ERRCODE = '22023',
            HINT = 'Answer ack or need_info.';
    END IF;
    details := COALESCE(details, '{}');
    IF jsonb_typeof(details) <> 'object' THEN
        RAISE EXCEPTION 'details must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF octet_length(details::text) > 16384 THEN
        RAISE EXCEPTION 'details are too large (% bytes, at most 16384)', octet_length(details::text)
            USING ERRCODE = '54000';
    END IF;
    IF response = 'need_info' THEN
        IF jsonb_typeof(details->'text') IS DISTINCT FROM 'string' OR btrim(details->>'text') = '' THEN
            RAISE EXCEPTION 'need_info requires a form with a non-empty "text"' USING ERRCODE = '22023',
                HINT = 'Pass details like {"text": "Which delivery address?", "attachments": ["doc-123"]}.';
        END IF;
        IF length(details->>'text') > 4000 THEN
            RAISE EXCEPTION 'need_info text is too long (% characters, at most 4000)', length(details->>'text')
                USING ERRCODE = '54000';
        END IF;
        IF details ? 'attachments' AND (jsonb_typeof(details->'attachments') <> 'array'
             OR EXISTS (SELECT 1 FROM jsonb_array_elements(details->'attachments') e
                         WHERE jsonb_typeof(e) <> 'string')
             OR jsonb_array_length(details->'attachments') > 50) THEN
            RAISE EXCEPTION 'need_info attachments must be an array of at most 50 reference strings'
                USING ERRCODE = '22023';
        END IF;
    END IF;

    SELECT * INTO n FROM order_flow.notification x WHERE x.id = notification_id FOR UPDATE;
    IF NOT FOUND THEN
        /* on a Citus coordinator: a notification of a distributed table */
        IF to_regnamespace('order_flow_citus') IS NOT NULL THEN
            nid := _order_flow._citus_acknowledge(notification_id, response, details, who);
            IF nid IS NOT NULL THEN
                RETURN nid;
            END IF;
        END IF;
        RAISE EXCEPTION 'notification % does not exist', notification_id USING ERRCODE = 'P0002',
            CONSTRAINT = 'order_flow_unknown_notification';
    END IF;
    PERFORM _order_flow._may_answer(n.id, n.department, n.status, who);

    UPDATE order_flow.notification x
       SET status = CASE WHEN response = 'ack' THEN 'acknowledged' ELSE 'need_info' END,
           answered_at = now_, answered_by = who, response = details
     WHERE x.id = n.id;

    IF response = 'ack' THEN
        PERFORM _order_flow._append_event(n.order_key, 'acknowledge', NULL, NULL,
            jsonb_build_object('notification_id', n.id, 'department', n.department,
                               'level', n.level, 'response', details), NULL);
        RETURN n.id;
    END IF;

    SELECT r.origin_department, r.ack_within INTO origin, window_
      FROM order_flow.transition_rule r
      JOIN order_flow.tracked_order t ON t.workflow = r.workflow
     WHERE t.order_key = n.order_key AND r.from_state = n.from_state AND r.to_state = n.to_state;
    origin := COALESCE(origin, 'sales');
    window_ := COALESCE(window_, interval '15 minutes');
    dl := order_flow.department_deadline(origin, now_, window_);
    pl := _order_flow._need_info_payload(n.payload, origin, dl, details, who, n.department, n.id);
    INSERT INTO order_flow.notification (order_key, department, level, deadline, payload, kind,
                                         from_state, to_state, event_seq, parent_id)
    VALUES (n.order_key, origin, 1, dl, pl, 'need_info', n.from_state, n.to_state, n.event_seq, n.id)
    RETURNING id INTO nid;
    PERFORM _order_flow._append_event(n.order_key, 'need_info', NULL, NULL,
        _order_flow._need_info_details(n.id, n.department, n.level, details, nid, origin), NULL);
    INSERT INTO order_flow.outbox (order_key, notification_id, payload, kind, event_seq)
    VALUES (n.order_key, nid, pl || jsonb_build_object('notification_id', nid), 'need_info',
            _order_flow._chain_end(n.order_key));
    PERFORM _order_flow._notify(jsonb_build_object('event', 'need_info', 'order_key', n.order_key,
                                                       'notification_id', nid, 'department', origin)::text);
    PERFORM _order_flow._wake_scheduler(dl);
    RETURN nid;
END
$$;

COMMENT ON FUNCTION order_flow.acknowledge(bigint, text, jsonb) IS
    'Answer a notification once: ack, or need_info with a form that goes back to the originating department';

/*
 * _escalate_notifications(as_of, batch): each unanswered notification past
 * its deadline is marked escalated and the next level opened, one level per
 * sweep; the last level stays pending and overdue.  One subtransaction per
 * notification: a failure is logged and the sweep goes on.
 */
CREATE OR REPLACE FUNCTION _order_flow._escalate_notifications(as_of timestamptz, batch integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    pol record;
    nid bigint;
    dl timestamptz;
    pl jsonb;
    done integer := 0;
    notes bigint;
    notify_on boolean := current_setting('order_flow.notify', true) IS DISTINCT FROM 'off';
    citus_done integer := 0;
BEGIN
    /*
     * On a Citus node: on the coordinator the catalogue to the workers and
     * the distributed orders' metrics; the companion shards it holds first.
     */
    IF to_regnamespace('order_flow_citus') IS NOT NULL THEN
        PERFORM _order_flow._citus_auto_sync();
        PERFORM _order_flow._citus_fold_pass();
        citus_done := _order_flow._citus_escalate_local(as_of, batch);
    END IF;
    /* notifications at the last level of their chain: never escalate, stay overdue */
    UPDATE order_flow.notification x SET escalates = false
     WHERE x.status = 'pending' AND x.escalates AND x.deadline <= as_of
       AND NOT EXISTS (SELECT 1 FROM order_flow.escalation_policy p
                        WHERE p.department = x.department AND p.level = x.level + 1);

    /* the whole batch set-based; if any row fails, the batch goes row by row below */
    BEGIN
        WITH due AS (
            SELECT x.id, x.order_key, x.department, x.level, x.deadline, x.payload, x.kind,
                   x.from_state, x.to_state, x.event_seq, p.delay, p.title,
                   CASE WHEN c.always_open IS NOT FALSE THEN as_of + p.delay
                        ELSE order_flow.business_deadline(c.calendar, as_of, p.delay) END AS new_deadline,
                   EXISTS (SELECT 1 FROM order_flow.escalation_policy q
                            WHERE q.department = x.department AND q.level = x.level + 2) AS further
              FROM order_flow.notification x
              JOIN order_flow.escalation_policy p ON p.department = x.department AND p.level = x.level + 1
              LEFT JOIN order_flow.department d ON d.department = x.department
              LEFT JOIN order_flow.calendar c ON c.calendar = d.calendar
             WHERE x.status = 'pending' AND x.escalates AND x.deadline <= as_of
             ORDER BY x.deadline
             LIMIT batch
             FOR UPDATE OF x SKIP LOCKED
        ), closed AS (
            UPDATE order_flow.notification n SET status = 'escalated', answered_at = clock_timestamp()
              FROM due WHERE n.order_key = due.order_key AND n.id = due.id
            RETURNING due.*
        ), opened AS (
            INSERT INTO order_flow.notification (order_key, department, level, deadline, payload, kind,
                                                 from_state, to_state, event_seq, parent_id, escalates)
            SELECT order_key, department, level + 1, new_deadline,
                   _order_flow._escalation_payload(payload, level + 1, new_deadline, id, title, deadline),
                   kind, from_state, to_state, event_seq, id, further
              FROM closed
            RETURNING id, order_key, department, level, deadline, payload, parent_id
        ), numbered AS (
            SELECT o.*, row_number() OVER (ORDER BY o.order_key, o.id)::integer AS pos FROM opened o
        ), appended AS (
            /* the escalate events, one pass over the chains (heads locked in key order) */
            SELECT a.pos, a.seq
              FROM _order_flow._append_events('escalate',
                       coalesce((SELECT array_agg(n.order_key ORDER BY n.pos) FROM numbered n), '{}'),
                       coalesce((SELECT array_agg(_order_flow._escalate_details(
                                                      n.id, n.parent_id, n.department, n.level,
                                                      n.payload->>'title', n.deadline,
                                                      (n.payload->>'overdue_since')::timestamptz)
                                                  ORDER BY n.pos) FROM numbered n), '{}')) a
        ), sent AS (
            /* each message carries the place of its escalate event in the order's chain */
            INSERT INTO order_flow.outbox (order_key, notification_id, payload, kind, event_seq)
            SELECT n.order_key, n.id, n.payload || jsonb_build_object('notification_id', n.id),
                   'escalation', a.seq
              FROM numbered n JOIN appended a ON a.pos = n.pos
            RETURNING order_key, notification_id
        ), noted AS (
            /* one NOTIFY per escalation, unless the session turned NOTIFY off */
            SELECT pg_notify('order_flow',
                             jsonb_build_object('event', 'escalate', 'order_key', o.order_key,
                                                'notification_id', o.id, 'department', o.department,
                                                'level', o.level)::text)
              FROM opened o
             WHERE notify_on
        )
        SELECT (SELECT count(*) FROM sent), (SELECT count(*) FROM noted) INTO done, notes;
        RETURN done + citus_done;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'order_flow: batch escalation failed (%), escalating one by one', SQLERRM;
        done := 0;
    END;

    FOR r IN SELECT x.* FROM order_flow.notification x
              WHERE x.status = 'pending' AND x.escalates AND x.deadline <= as_of
              ORDER BY x.deadline
              LIMIT batch
              FOR UPDATE OF x SKIP LOCKED
    LOOP
        BEGIN
            SELECT * INTO pol FROM order_flow.escalation_policy p
             WHERE p.department = r.department AND p.level = r.level + 1;
            IF NOT FOUND THEN
                UPDATE order_flow.notification SET escalates = false
                 WHERE order_key = r.order_key AND id = r.id;
                CONTINUE;
            END IF;
            dl := order_flow.department_deadline(r.department, as_of, pol.delay);
            pl := _order_flow._escalation_payload(r.payload, r.level + 1, dl, r.id, pol.title, r.deadline);
            UPDATE order_flow.notification SET status = 'escalated', answered_at = clock_timestamp()
             WHERE order_key = r.order_key AND id = r.id;
            INSERT INTO order_flow.notification (order_key, department, level, deadline, payload, kind,
                                                 from_state, to_state, event_seq, parent_id, escalates)
            VALUES (r.order_key, r.department, r.level + 1, dl, pl, r.kind, r.from_state, r.to_state,
                    r.event_seq, r.id,
                    EXISTS (SELECT 1 FROM order_flow.escalation_policy p
                             WHERE p.department = r.department AND p.level = r.level + 2))
            RETURNING id INTO nid;
            PERFORM _order_flow._append_event(r.order_key, 'escalate', NULL, NULL,
                _order_flow._escalate_details(nid, r.id, r.department, r.level + 1, pol.title, dl, r.deadline),
                NULL);
            INSERT INTO order_flow.outbox (order_key, notification_id, payload, kind, event_seq)
            VALUES (r.order_key, nid, pl || jsonb_build_object('notification_id', nid), 'escalation',
                    _order_flow._chain_end(r.order_key));
            PERFORM _order_flow._notify(jsonb_build_object('event', 'escalate', 'order_key', r.order_key,
                                                               'notification_id', nid, 'department', r.department,
                                                               'level', r.level + 1)::text);
            done := done + 1;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'order_flow: could not escalate notification %: %', r.id, SQLERRM;
        END;
    END LOOP;
    RETURN done + citus_done;
END
$$;

/*
 * _raise_reminders(as_of, batch): orders that have not progressed for the
 * state's "cannot wait" threshold times each reminder level's factor get
 * that level's reminder (audited as remind, sent to the state's owner
 * department through the outbox).
 */
CREATE OR REPLACE FUNCTION _order_flow._raise_reminders(as_of timestamptz, batch integer)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    p record;
    lvl integer;
    done integer := 0;
    msg jsonb;
BEGIN
    /* on a Citus node: the companion shards it holds first */
    IF to_regnamespace('order_flow_citus') IS NOT NULL THEN
        done := _order_flow._citus_remind_local(as_of, batch);
    END IF;
    FOR r IN SELECT t.order_key, t.workflow, t.state, t.entered_at, t.reminder_level,
                    s.max_dwell, s.owner_department
               FROM order_flow.tracked_order t
               JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = t.state
              WHERE t.stale_after IS NOT NULL AND t.stale_after <= as_of
              ORDER BY t.stale_after
              LIMIT batch
              FOR UPDATE OF t SKIP LOCKED
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
                PERFORM _order_flow._append_event(r.order_key, 'remind', r.state, r.state, msg, NULL);
                INSERT INTO order_flow.outbox (order_key, payload, kind, event_seq)
                VALUES (r.order_key, msg, 'reminder', _order_flow._chain_end(r.order_key));
                PERFORM _order_flow._notify(msg::text);
                lvl := p.level;
                done := done + 1;
            END LOOP;
            UPDATE order_flow.tracked_order t
               SET reminder_level = lvl,
                   stale_after = t.entered_at + r.max_dwell *
                       (SELECT x.factor FROM order_flow.reminder_policy x
                         WHERE x.workflow = r.workflow AND x.level = lvl + 1)
             WHERE t.order_key = r.order_key;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'order_flow: could not remind order %: %', r.order_key, SQLERRM;
        END;
    END LOOP;
    RETURN done;
END
$$;

/* The earliest moment the scheduler has an escalation to make. */
CREATE OR REPLACE FUNCTION _order_flow._next_due() RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT least((SELECT deadline FROM order_flow.notification
                   WHERE status = 'pending' AND escalates ORDER BY deadline LIMIT 1),
                 CASE WHEN to_regnamespace('order_flow_citus') IS NOT NULL THEN _order_flow._citus_next_due() END)
$$;

CREATE OR REPLACE VIEW order_flow.pending_acks AS
SELECT n.id AS notification_id,
       n.order_key,
       n.department,
       n.level,
       n.deadline,
       GREATEST(0, floor(extract(epoch FROM n.deadline - now())))::bigint AS seconds_left,
       n.deadline < now() AS overdue,
       n.kind,
       p.title AS level_title,
       n.from_state,
       n.to_state,
       n.payload,
       n.created_at
  FROM (SELECT x.id, x.order_key, x.department, x.level, x.deadline, x.kind, x.from_state, x.to_state,
               x.payload, x.created_at
          FROM order_flow.notification x
         WHERE x.status = 'pending'
        UNION ALL
        /* on a Citus coordinator, the distributed tables' (README, "Scale-out on Citus") */
        SELECT * FROM _order_flow._citus_pending()) n
  LEFT JOIN order_flow.escalation_policy p ON p.department = n.department AND p.level = n.level;

COMMENT ON VIEW order_flow.pending_acks IS
    'The countdown board: every open notification with seconds left, overdue flag and current level';

CREATE OR REPLACE VIEW order_flow.stale_orders AS
SELECT t.order_key,
       t.tbl,
       t.workflow,
       t.state,
       s.owner_department,
       t.entered_at,
       now() - t.entered_at AS waiting,
       s.max_dwell,
       t.reminder_level,
       t.customer_key,
       t.attributes
  FROM (SELECT h.order_key, h.tbl, h.workflow, h.state, h.entered_at, h.reminder_level, h.customer_key,
               h.attributes
          FROM order_flow.tracked_order h
        UNION ALL
        /* on a Citus coordinator, the distributed tables' orders */
        SELECT c.order_key, c.tbl, c.workflow, c.state, c.entered_at, c.reminder_level, c.customer_key,
               c.attributes
          FROM _order_flow._citus_heads() c) t
  JOIN order_flow.state s ON s.workflow = t.workflow AND s.state = t.state
 WHERE t.tbl IS NOT NULL AND s.category <> 'terminal'
   AND t.entered_at + s.max_dwell <= now();

COMMENT ON VIEW order_flow.stale_orders IS
    'Orders waiting longer than their state''s "cannot wait" threshold, with the reminder level reached';

/* Configuration rules of the broadcast hub. */
DROP TRIGGER IF EXISTS calendar_valid ON order_flow.calendar;
CREATE CONSTRAINT TRIGGER calendar_valid AFTER INSERT OR UPDATE ON order_flow.calendar
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT _order_flow._loading())
    EXECUTE FUNCTION _order_flow._validate_calendar();

DROP TRIGGER IF EXISTS calendar_hours_valid ON order_flow.calendar_hours;
CREATE CONSTRAINT TRIGGER calendar_hours_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.calendar_hours
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT _order_flow._loading())
    EXECUTE FUNCTION _order_flow._validate_calendar();

DROP TRIGGER IF EXISTS escalation_policy_valid ON order_flow.escalation_policy;
CREATE CONSTRAINT TRIGGER escalation_policy_valid AFTER INSERT OR UPDATE OR DELETE ON order_flow.escalation_policy
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NOT _order_flow._loading())
    EXECUTE FUNCTION _order_flow._validate_escalation();

CREATE OR REPLACE TRIGGER department_defaults AFTER INSERT ON order_flow.department
    FOR EACH ROW EXECUTE FUNCTION _order_flow._department_defaults();

CREATE OR REPLACE TRIGGER reminder_policy_restale AFTER INSERT OR UPDATE OR DELETE ON order_flow.reminder_policy
    FOR EACH STATEMENT WHEN (NOT _order_flow._loading()) EXECUTE FUNCTION _order_flow._restale_policy();

CREATE OR REPLACE TRIGGER state_restale AFTER UPDATE OF max_dwell, category ON order_flow.state
    FOR EACH ROW WHEN (NOT _order_flow._loading()) EXECUTE FUNCTION _order_flow._restale();

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
    RETURN _order_flow._escalate_notifications(as_of, batch)
         + _order_flow._raise_reminders(as_of, batch);
END
$$;

COMMENT ON FUNCTION order_flow.escalate_due(timestamptz) IS
    'One escalation sweep: overdue notifications go up one level, stale orders get reminders';

/*
 * The relay contract.  A relay (WeCom bot, e-mail, SMS gateway) calls
 * outbox_claim(batch, lease) in a transaction of its own, sends what it got
 * in the order given, then outbox_done(ids).  Delivery is at least once: a
 * relay that dies before outbox_done() leaves its messages leased until the
 * lease ends, when the next claim hands them out again (the message's
 * idempotency_key lets the receiver drop the second copy).
 *
 * Per-order order: a claim takes whole orders -- every undelivered message
 * of an order nobody else holds a live lease on -- so two relays never hold
 * messages of one order at once, and hands each order's messages out in
 * chain order (event_seq, then id).  Orders are taken oldest message first.
 * Two claims racing: each first takes a transaction-scoped advisory lock
 * per candidate order (skipping the ones it cannot have), then, in a new
 * statement that sees every lease committed before those locks were
 * granted, leases the orders still free.
 */
CREATE OR REPLACE FUNCTION order_flow.outbox_claim(batch integer DEFAULT 100,
                                                   lease interval DEFAULT '1 minute')
RETURNS TABLE (id bigint, idempotency_key text, order_key text, seq bigint, kind text,
               occurred_at timestamptz, attempts integer, message jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    who text := order_flow.current_actor();
    until timestamptz;
    candidates text[];
    mine text[];
BEGIN
    IF batch IS NULL OR lease IS NULL THEN
        RAISE EXCEPTION 'batch and lease must not be null' USING ERRCODE = '22004';
    END IF;
    IF batch < 1 OR batch > 10000 THEN
        RAISE EXCEPTION 'batch % is out of range (1 to 10000)', batch USING ERRCODE = '22023',
            CONSTRAINT = 'order_flow_outbox_batch';
    END IF;
    IF lease <= interval '0' OR NOT isfinite(clock_timestamp() + lease)
       OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'lease % is out of range (more than 0, at most 1 day)', lease
            USING ERRCODE = '22023', CONSTRAINT = 'order_flow_outbox_lease';
    END IF;

    /* on a Citus coordinator: the distributed tables' messages first, the local ones at the next call */
    IF to_regnamespace('order_flow_citus') IS NOT NULL THEN
        RETURN QUERY SELECT * FROM _order_flow._citus_outbox_claim(batch, lease, who);
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;

    /* orders with undelivered messages and no live lease, oldest first */
    SELECT array_agg(c.order_key ORDER BY c.oldest) INTO candidates
      FROM (SELECT o.order_key, min(o.created_at) AS oldest
              FROM order_flow.outbox o
             WHERE o.delivered_at IS NULL
             GROUP BY o.order_key
            HAVING NOT coalesce(bool_or(o.lease_until > clock_timestamp()), false)
             ORDER BY min(o.created_at)
             LIMIT batch) c;
    IF candidates IS NULL THEN
        RETURN;
    END IF;
    /* the ones no other claim is taking right now (held until this transaction ends) */
    SELECT array_agg(k) INTO mine
      FROM unnest(candidates) k
     WHERE pg_try_advisory_xact_lock(hashtext('order_flow.outbox'), hashtext(k));
    IF mine IS NULL THEN
        RETURN;
    END IF;

    until := clock_timestamp() + lease;
    /* a new snapshot: leases committed by a claim that held these orders are seen */
    RETURN QUERY
    WITH free AS (
        SELECT o.order_key
          FROM order_flow.outbox o
         WHERE o.order_key = ANY (mine) AND o.delivered_at IS NULL
         GROUP BY o.order_key
        HAVING NOT coalesce(bool_or(o.lease_until > clock_timestamp()), false)
    ), leased AS (
        UPDATE order_flow.outbox o
           SET claimed_by = who, lease_until = until, attempts = o.attempts + 1
          FROM free f
         WHERE o.order_key = f.order_key AND o.delivered_at IS NULL
        RETURNING o.*
    )
    SELECT l.id, m.ikey, l.order_key, l.event_seq, m.kind, l.created_at, l.attempts,
           jsonb_build_object('id', l.id, 'idempotency_key', m.ikey, 'order_key', l.order_key,
                              'seq', l.event_seq, 'kind', m.kind, 'occurred_at', l.created_at,
                              'attempt', l.attempts, 'payload', l.payload)
      FROM leased l
     CROSS JOIN LATERAL (SELECT l.order_key || '/' || l.id AS ikey,
                                coalesce(l.kind, 'message') AS kind) m
     ORDER BY (SELECT min(x.created_at) FROM leased x WHERE x.order_key = l.order_key),
              l.order_key, l.event_seq NULLS FIRST, l.id;
END
$$;

COMMENT ON FUNCTION order_flow.outbox_claim(integer, interval) IS
    'Relay: lease the undelivered messages of up to batch orders that no other relay holds, for lease; send them in the order returned (per order: chain order), then call outbox_done(ids). At least once: a lease that ends hands the messages out again';

CREATE OR REPLACE FUNCTION order_flow.outbox_done(ids bigint[])
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n integer;
BEGIN
    IF ids IS NULL THEN
        RAISE EXCEPTION 'ids must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE order_flow.outbox o
       SET delivered_at = clock_timestamp(), lease_until = NULL
     WHERE o.id = ANY (ids) AND o.delivered_at IS NULL;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF to_regnamespace('order_flow_citus') IS NOT NULL THEN
        n := n + _order_flow._citus_outbox_done(ids);
    END IF;
    RETURN n;
END
$$;

COMMENT ON FUNCTION order_flow.outbox_done(bigint[]) IS
    'Relay: these messages were sent; returns how many were marked delivered (one already delivered is not counted again)';
