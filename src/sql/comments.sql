/*
 * src/sql/comments.sql
 *
 * What each table and each public function of the extension is for, as
 * psql's \dt+ and \df+ show it (restated by every update; COMMENT is
 * idempotent).  test/pgtap/comments.sql fails when a table, a view or a
 * public function has none.
 */

COMMENT ON TABLE order_flow.workflow IS
    'Workflows: named state machines (b2b_order is shipped); a managed table follows one';
COMMENT ON TABLE order_flow.state IS
    'The states of each workflow: category, owning department, how long an order may wait (max_dwell), the stamp it sets, exception type';
COMMENT ON TABLE order_flow.transition_rule IS
    'The allowed edges of each workflow: who may take them, whom they notify and within what time, whether a reason is required, their exception type';
COMMENT ON TABLE order_flow.department IS
    'Departments: the units that take edges, are notified and answer, each on a working calendar';
COMMENT ON TABLE order_flow.member IS
    'Who belongs to which department at which escalation level (actor names as claimed in order_flow.actor)';
COMMENT ON TABLE order_flow.escalation_policy IS
    'For each department, the levels an unanswered notification climbs: title and delay of each';
COMMENT ON TABLE order_flow.reminder_policy IS
    'For each workflow, the reminder levels for an order waiting in its state: factor of the state''s max_dwell';
COMMENT ON TABLE order_flow.calendar IS
    'Working calendars (time zone; always open or by hours) on which acknowledgement deadlines are counted';
COMMENT ON TABLE order_flow.calendar_hours IS
    'Working hours of a calendar per ISO day of the week (several windows per day allowed)';
COMMENT ON TABLE order_flow.calendar_holiday IS
    'Days a calendar does not work';
COMMENT ON TABLE order_flow.config_tombstone IS
    'Configuration rows deleted while a restore was loading, kept so that the restore does not bring them back';
COMMENT ON TABLE order_flow.managed_table IS
    'The tables whose orders the extension manages: key and status columns, workflow, customer column and captured attributes';
COMMENT ON TABLE order_flow.tracked_order IS
    'One row per order: its state, the head of its audit chain (last sequence number and hash), stamps and reminder bookkeeping';
COMMENT ON TABLE order_flow.notification IS
    'Broadcast notifications: one per department notified of a move (and per escalation level, need_info form), with deadline and answer';
COMMENT ON TABLE order_flow.outbox IS
    'Messages for relays (WeCom, e-mail, SMS): at least once through outbox_claim()/outbox_done(), per order in chain order';
COMMENT ON TABLE order_flow.refused_attempt IS
    'Refused moves, logged out of band (they survive the rollback of the refused transaction): who, what, why';
COMMENT ON TABLE order_flow.sku IS
    'Articles the shipping station knows: barcode, category, weight, prohibited flag, substitutes';
COMMENT ON TABLE order_flow.order_line IS
    'The lines of each order for the station: SKU, quantity, how many scanned, unit price';
COMMENT ON TABLE order_flow.package_preset IS
    'Package presets a station operator picks: maximum and tare weight';
COMMENT ON TABLE order_flow.freight_rule IS
    'Freight by carrier, region and weight band: base fee and price per kg; the cheapest rule wins';
COMMENT ON TABLE order_flow.station_config IS
    'Station settings as key/value pairs';
COMMENT ON TABLE order_flow.shipment IS
    'One row per shipped order: waybill, carrier, preset, weight, freight, label, operator and station';
COMMENT ON TABLE order_flow.station_event IS
    'Every station step (scan, error, ship...) with its operator, station and dwell: the station heat map''s source';
COMMENT ON TABLE order_flow.logistics_trace IS
    'Carrier tracking events reported through logistics_update()';

COMMENT ON COLUMN order_flow.outbox.kind IS
    'What the message announces: ack_request, escalation, need_info or reminder (NULL: written before 1.2)';
COMMENT ON COLUMN order_flow.outbox.event_seq IS
    'The place in the order''s audit chain of the event the message announces; relays deliver an order''s messages in this order';
COMMENT ON COLUMN order_flow.outbox.claimed_by IS
    'The actor whose outbox_claim() last leased the message';
COMMENT ON COLUMN order_flow.outbox.lease_until IS
    'Until when the message is leased to claimed_by; afterwards outbox_claim() hands it out again';

COMMENT ON FUNCTION order_flow.create_status(text, text, text) IS
    'Add a state name to the status dictionary, after one name and/or before another (positions never move)';
COMMENT ON FUNCTION order_flow.department_deadline(text, timestamptz, interval) IS
    'start + span counted on the department''s working calendar';
COMMENT ON FUNCTION order_flow.grant_station_operator(regrole) IS
    'Let a role run the shipping station (EXECUTE on station_scan and station_ship): operation right without decision right';
COMMENT ON FUNCTION order_flow.validate_workflow(text) IS
    'Check a workflow''s structure (one initial state, no terminal state with outgoing edges, no unreachable state, no dead end, known departments); 23514 naming the offending states';
COMMENT ON FUNCTION order_flow.waybill_check_digit(text, bigint) IS
    'The check digit of a waybill serial number: none, mod 7, or mod 11 (UPU S10 weights)';

COMMENT ON FUNCTION order_flow.status_in(cstring) IS 'Input of order_flow.status: a state name';
COMMENT ON FUNCTION order_flow.status_out(order_flow.status) IS 'Output of order_flow.status: the state name (name@position in pg_dump)';
COMMENT ON FUNCTION order_flow.status_recv(internal) IS 'Binary input of order_flow.status: the state name';
COMMENT ON FUNCTION order_flow.status_send(order_flow.status) IS 'Binary output of order_flow.status: the state name';
COMMENT ON FUNCTION order_flow.status_eq(order_flow.status, order_flow.status) IS 'Support of = for order_flow.status';
COMMENT ON FUNCTION order_flow.status_ne(order_flow.status, order_flow.status) IS 'Support of <> for order_flow.status';
COMMENT ON FUNCTION order_flow.status_lt(order_flow.status, order_flow.status) IS 'Support of < for order_flow.status (process order)';
COMMENT ON FUNCTION order_flow.status_le(order_flow.status, order_flow.status) IS 'Support of <= for order_flow.status (process order)';
COMMENT ON FUNCTION order_flow.status_gt(order_flow.status, order_flow.status) IS 'Support of > for order_flow.status (process order)';
COMMENT ON FUNCTION order_flow.status_ge(order_flow.status, order_flow.status) IS 'Support of >= for order_flow.status (process order)';
COMMENT ON FUNCTION order_flow.status_cmp(order_flow.status, order_flow.status) IS 'btree comparison of order_flow.status (process order)';
COMMENT ON FUNCTION order_flow.status_hash(order_flow.status) IS 'Hash of order_flow.status';
COMMENT ON FUNCTION order_flow.status_hash_extended(order_flow.status, bigint) IS 'Seeded hash of order_flow.status';
COMMENT ON FUNCTION order_flow.status_to_text(order_flow.status) IS 'Cast order_flow.status -> text: the state name';
COMMENT ON FUNCTION order_flow.status_from_text(text) IS 'Cast text -> order_flow.status: a known state name (22P02 otherwise)';
COMMENT ON FUNCTION order_flow.status_position(order_flow.status) IS 'The state''s position in the process order';
COMMENT ON FUNCTION order_flow.status_larger(order_flow.status, order_flow.status) IS 'The later of two states (max() support)';
COMMENT ON FUNCTION order_flow.status_smaller(order_flow.status, order_flow.status) IS 'The earlier of two states (min() support)';
COMMENT ON FUNCTION order_flow.status_lt_text(order_flow.status, text) IS 'status < text, the text read as a state name';
COMMENT ON FUNCTION order_flow.status_le_text(order_flow.status, text) IS 'status <= text, the text read as a state name';
COMMENT ON FUNCTION order_flow.status_gt_text(order_flow.status, text) IS 'status > text, the text read as a state name';
COMMENT ON FUNCTION order_flow.status_ge_text(order_flow.status, text) IS 'status >= text, the text read as a state name';
COMMENT ON FUNCTION order_flow.text_lt_status(text, order_flow.status) IS 'text < status, the text read as a state name';
COMMENT ON FUNCTION order_flow.text_le_status(text, order_flow.status) IS 'text <= status, the text read as a state name';
COMMENT ON FUNCTION order_flow.text_gt_status(text, order_flow.status) IS 'text > status, the text read as a state name';
COMMENT ON FUNCTION order_flow.text_ge_status(text, order_flow.status) IS 'text >= status, the text read as a state name';
