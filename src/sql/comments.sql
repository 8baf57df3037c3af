/*
 * src/sql/comments.sql
 *
 * What each table and each public function of the extension is for, and
 * what every column of every table and view holds, as psql's \dt+, \d+
 * and \df+ show it (restated by every update; COMMENT is idempotent; the
 * views' own comments stand beside their definitions).
 * test/pgtap/comments.sql fails when a table, a view, a column of either
 * a public function or one of the two schemas has none.
 */

/* ------------------------------------------------------------------ */
/* Schemas.                                                            */
/* ------------------------------------------------------------------ */
COMMENT ON SCHEMA order_flow IS
    'order_flow: B2B order workflow; the public API (tables, views, functions) -- \df order_flow.* lists it';
COMMENT ON SCHEMA _order_flow IS
    'order_flow''s internal helpers: trigger, support and state functions the public API is made of; not to be called directly';

/* ------------------------------------------------------------------ */
/* Tables.                                                             */
/* ------------------------------------------------------------------ */
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
COMMENT ON TABLE order_flow.exception_fact IS
    'Exception events (edges with an exception type, exception records), folded from the audit log with order_fact; event_id = audit_log.id';

/* ------------------------------------------------------------------ */
/* Columns of the workflow catalogue.                                  */
/* ------------------------------------------------------------------ */
COMMENT ON COLUMN order_flow.status_label.label IS
    'A state name (lower-case identifier), as order_flow.status values show it';
COMMENT ON COLUMN order_flow.status_label.sort_position IS
    'The name''s fixed process position, by which status values sort; never changes (shipped names are 65536 apart, new ones go in between)';

COMMENT ON COLUMN order_flow.workflow.workflow IS
    'Workflow name (lower-case identifier), named by states, edges and managed tables';
COMMENT ON COLUMN order_flow.workflow.description IS
    'What the workflow is for, in words';

COMMENT ON COLUMN order_flow.calendar.calendar IS
    'Calendar name, named by department.calendar (24x7 and office ship)';
COMMENT ON COLUMN order_flow.calendar.time_zone IS
    'Time zone (name or abbreviation) in which the calendar''s working hours and holidays are read';
COMMENT ON COLUMN order_flow.calendar.always_open IS
    'True: deadlines and business hours run on the wall clock and the working hours are ignored';
COMMENT ON COLUMN order_flow.calendar.description IS
    'What the calendar is, in words';

COMMENT ON COLUMN order_flow.calendar_hours.calendar IS
    'The calendar these working hours belong to';
COMMENT ON COLUMN order_flow.calendar_hours.isodow IS
    'ISO day of the week: 1 = Monday to 7 = Sunday';
COMMENT ON COLUMN order_flow.calendar_hours.opens IS
    'Local time (in the calendar''s time zone) at which a working window opens';
COMMENT ON COLUMN order_flow.calendar_hours.closes IS
    'Local time at which the window closes (after opens; the windows of one day may not overlap)';

COMMENT ON COLUMN order_flow.calendar_holiday.calendar IS
    'The calendar that does not work that day';
COMMENT ON COLUMN order_flow.calendar_holiday.day IS
    'Local date (in the calendar''s time zone) without working time';
COMMENT ON COLUMN order_flow.calendar_holiday.description IS
    'What the day is, in words';

COMMENT ON COLUMN order_flow.department.department IS
    'Department key (lower-case identifier) used by edges, notifications, membership and escalation chains';
COMMENT ON COLUMN order_flow.department.name IS
    'Display name of the department';
COMMENT ON COLUMN order_flow.department.calendar IS
    'Working calendar on which the department''s acknowledgement deadlines and business hours are counted (default 24x7)';

COMMENT ON COLUMN order_flow.state.workflow IS
    'The workflow the state belongs to';
COMMENT ON COLUMN order_flow.state.state IS
    'State name; entered in the status dictionary (status_label) when first used';
COMMENT ON COLUMN order_flow.state.category IS
    'initial (exactly one per workflow), active, exception, or terminal (no outgoing edges, never stale)';
COMMENT ON COLUMN order_flow.state.owner_department IS
    'Department responsible for orders in this state: named by its stale-order reminders, its calendar counts business hours in state_durations (NULL: none)';
COMMENT ON COLUMN order_flow.state.max_dwell IS
    'The "cannot wait" threshold: an order longer than this in the state is stale and reminded (NULL: no threshold)';
COMMENT ON COLUMN order_flow.state.stamps IS
    'The first-reached time entering this state stamps in tracked_order: contract_signed, warehouse_confirmed, finance_approved or shipped (NULL: none)';
COMMENT ON COLUMN order_flow.state.resumes_to_origin IS
    'A holding state: the order may leave it only back to the state it came from (or by an explicit edge)';
COMMENT ON COLUMN order_flow.state.exception_type IS
    'The exception the state stands for, for readers (the metrics count the exception_type of the edge taken into it; NULL: none)';
COMMENT ON COLUMN order_flow.state.description IS
    'What the state means, in words';

COMMENT ON COLUMN order_flow.transition_rule.workflow IS
    'The workflow the edge belongs to';
COMMENT ON COLUMN order_flow.transition_rule.from_state IS
    'The state the edge leaves';
COMMENT ON COLUMN order_flow.transition_rule.to_state IS
    'The state the edge enters (never from_state)';
COMMENT ON COLUMN order_flow.transition_rule.notify IS
    'Departments that must acknowledge entry by this edge (NULL or empty: none)';
COMMENT ON COLUMN order_flow.transition_rule.ack_within IS
    'Time each notified department has to acknowledge, counted on its calendar; also the window of a need_info request sent back to origin_department';
COMMENT ON COLUMN order_flow.transition_rule.performed_by IS
    'Departments whose members may take this edge (NULL or empty: any actor); superusers and order_flow_admin members always may';
COMMENT ON COLUMN order_flow.transition_rule.reason_required IS
    'True: a move by this edge needs a reason (a note to transition(), details.reason, or the setting order_flow.reason)';
COMMENT ON COLUMN order_flow.transition_rule.exception_type IS
    'Exception type a move by this edge records in its event, counted by exception_pareto and the exception rate (NULL: not an exception)';
COMMENT ON COLUMN order_flow.transition_rule.origin_department IS
    'Department to which a need_info answer to this edge''s notifications goes back (NULL: sales)';

COMMENT ON COLUMN order_flow.member.actor IS
    'The person, by the name claimed through order_flow.actor (else the session user''s name)';
COMMENT ON COLUMN order_flow.member.department IS
    'The department the person belongs to: its edges they may take, its notifications they may answer';
COMMENT ON COLUMN order_flow.member.level IS
    '1 = staff / supervisor, 2 = manager, 3 = director: the escalation level the member stands for (any member of the department may answer a notification of any level)';

COMMENT ON COLUMN order_flow.escalation_policy.department IS
    'The department whose chain this is';
COMMENT ON COLUMN order_flow.escalation_policy.level IS
    'Escalation level, 1 to n without gaps (n at least 3)';
COMMENT ON COLUMN order_flow.escalation_policy.title IS
    'Who answers at this level (supervisor, manager, director by default); pending_acks shows it';
COMMENT ON COLUMN order_flow.escalation_policy.delay IS
    'Time this level has to answer once a notification is escalated to it, counted on the department''s calendar (level 1''s is unused: a first notification gets its edge''s ack_within)';

COMMENT ON COLUMN order_flow.reminder_policy.workflow IS
    'The workflow the reminder level applies to';
COMMENT ON COLUMN order_flow.reminder_policy.level IS
    'Reminder level, from 1';
COMMENT ON COLUMN order_flow.reminder_policy.factor IS
    'The level''s reminder is raised this many times the state''s max_dwell after the order entered it (1, 1.5 and 2 shipped)';

COMMENT ON COLUMN order_flow.config_tombstone.tbl IS
    'Name of the configuration table (in schema order_flow) the row was deleted from';
COMMENT ON COLUMN order_flow.config_tombstone.pk IS
    'The deleted row''s primary key, as a JSON object of column: value';
COMMENT ON COLUMN order_flow.config_tombstone.deleted_at IS
    'When the row was (last) deleted';

/* ------------------------------------------------------------------ */
/* Columns of order tracking, the audit log and the broadcast.         */
/* ------------------------------------------------------------------ */
COMMENT ON COLUMN order_flow.managed_table.relid IS
    'The managed table';
COMMENT ON COLUMN order_flow.managed_table.tbl IS
    'Its schema-qualified name as text: the name tracked orders, events and refusals carry';
COMMENT ON COLUMN order_flow.managed_table.key_column IS
    'Column holding the order key (unique; read as text)';
COMMENT ON COLUMN order_flow.managed_table.status_column IS
    'Column holding the order''s state (order_flow.status, text, varchar or an enum)';
COMMENT ON COLUMN order_flow.managed_table.workflow IS
    'The workflow the table''s orders follow';
COMMENT ON COLUMN order_flow.managed_table.customer_column IS
    'Column naming the customer, captured into every event and payload (NULL: none)';
COMMENT ON COLUMN order_flow.managed_table.attributes IS
    'Columns captured into every event and broadcast payload (region, grade, amount, promised_ship_date, ...)';
COMMENT ON COLUMN order_flow.managed_table.managed_at IS
    'When manage() attached the table';

COMMENT ON COLUMN order_flow.tracked_order.order_key IS
    'The order''s key as text; keys beginning with order_flow: are the extension''s own chains (order_flow:config)';
COMMENT ON COLUMN order_flow.tracked_order.tbl IS
    'The managed table the order lives in, as managed_table.tbl (NULL: one of the extension''s own chains)';
COMMENT ON COLUMN order_flow.tracked_order.workflow IS
    'The workflow the order follows (NULL: one of the extension''s own chains)';
COMMENT ON COLUMN order_flow.tracked_order.state IS
    'The order''s current state as its chain records it (NULL: the order was deleted and its key may not return, or an extension chain)';
COMMENT ON COLUMN order_flow.tracked_order.held_from IS
    'In a holding state (resumes_to_origin): the state the order was held from, the one it may resume to (else NULL)';
COMMENT ON COLUMN order_flow.tracked_order.entered_at IS
    'When the order entered its current state: the move''s business time, or when manage() adopted it or repair_drift() accepted its state';
COMMENT ON COLUMN order_flow.tracked_order.last_seq IS
    'Sequence number of the last event of the order''s chain (0: none yet)';
COMMENT ON COLUMN order_flow.tracked_order.last_hash IS
    'Hash of that last event, to which the next one links (NULL: no event yet)';
COMMENT ON COLUMN order_flow.tracked_order.last_occurred_at IS
    'Latest business time (occurred_at) in the chain; an imported move may not be dated before it';
COMMENT ON COLUMN order_flow.tracked_order.reminder_level IS
    'Highest stale-order reminder level raised since the order entered its state (0: none)';
COMMENT ON COLUMN order_flow.tracked_order.stale_after IS
    'When the next stale-order reminder is due (entered_at + max_dwell x the next reminder factor); NULL in terminal states, without max_dwell, or when every level was raised';
COMMENT ON COLUMN order_flow.tracked_order.customer_key IS
    'The customer captured at the last move or adoption (NULL: none, or the table has no customer column)';
COMMENT ON COLUMN order_flow.tracked_order.attributes IS
    'The attribute columns captured at the last move or adoption, as a JSON object (NULL values left out)';
COMMENT ON COLUMN order_flow.tracked_order.adopted_at IS
    'When manage() last adopted the row in the state it had (NULL: never adopted)';
COMMENT ON COLUMN order_flow.tracked_order.created_at IS
    'Business time of the order''s created event (NULL: adopted, not created while managed; or an extension chain)';
COMMENT ON COLUMN order_flow.tracked_order.contract_signed_at IS
    'Business time the order first entered a state that stamps contract_signed (NULL: never)';
COMMENT ON COLUMN order_flow.tracked_order.warehouse_confirmed_at IS
    'Business time the order first entered a state that stamps warehouse_confirmed (NULL: never)';
COMMENT ON COLUMN order_flow.tracked_order.finance_approved_at IS
    'Business time the order first entered a state that stamps finance_approved (NULL: never)';
COMMENT ON COLUMN order_flow.tracked_order.shipped_at IS
    'Business time the order first entered a state that stamps shipped (NULL: never)';

COMMENT ON COLUMN order_flow.audit_log.id IS
    'Event id, unique but not ordered across sessions or orders (within an order, seq is the order)';
COMMENT ON COLUMN order_flow.audit_log.order_key IS
    'The order whose chain the event belongs to (order_flow:config for configuration changes)';
COMMENT ON COLUMN order_flow.audit_log.seq IS
    'The event''s place in its order''s chain, from 1; with order_key, the event''s identity';
COMMENT ON COLUMN order_flow.audit_log.action IS
    'What happened: created, transition, import, deleted, drift, acknowledge, need_info, escalate, remind, ship, logistics, payment, service_request, complaint, exception, note or config_change';
COMMENT ON COLUMN order_flow.audit_log.from_state IS
    'The state the order left (a recorded fact: the state it was in; NULL when the event is about no state, as created, answers, escalations)';
COMMENT ON COLUMN order_flow.audit_log.to_state IS
    'The state the order entered (a recorded fact: the state it was in; NULL when the event is about no state, and for deleted)';
COMMENT ON COLUMN order_flow.audit_log.actor IS
    'The acting person as claimed: the setting order_flow.actor, else session_user';
COMMENT ON COLUMN order_flow.audit_log.db_user IS
    'The database role that performed it, which cannot be claimed';
COMMENT ON COLUMN order_flow.audit_log.occurred_at IS
    'Business time: when it happened (dated by import_transition() and carrier traces; otherwise when it was recorded)';
COMMENT ON COLUMN order_flow.audit_log.recorded_at IS
    'Server clock when the event was written; never settable';
COMMENT ON COLUMN order_flow.audit_log.details IS
    'The event''s data as a JSON object: a move''s captured attributes, customer, note and exception_type; the fact, answer or configuration change recorded';
COMMENT ON COLUMN order_flow.audit_log.prev_hash IS
    'Hash of the previous event of the same order (NULL for the order''s first event)';
COMMENT ON COLUMN order_flow.audit_log.hash IS
    'SHA-256 of this event chained to prev_hash (order_flow.event_hash), which verify_audit() checks';

COMMENT ON COLUMN order_flow.notification.id IS
    'Notification id, unique across orders: what acknowledge() takes';
COMMENT ON COLUMN order_flow.notification.order_key IS
    'The order the notification is about';
COMMENT ON COLUMN order_flow.notification.department IS
    'The department asked to answer';
COMMENT ON COLUMN order_flow.notification.level IS
    'Escalation level: 1 when first sent, one more at each escalation';
COMMENT ON COLUMN order_flow.notification.status IS
    'pending, acknowledged, need_info (answered with a form), escalated (a next level was opened), or closed (the order was deleted)';
COMMENT ON COLUMN order_flow.notification.deadline IS
    'When an answer is due, counted on the department''s calendar: the edge''s ack_within after the move (or the need_info answer) at level 1, the level''s delay after the escalation above';
COMMENT ON COLUMN order_flow.notification.payload IS
    'The structured message: order key, table, states, customer, attributes, actor, department, level, deadline (need_info: the form and who asked)';
COMMENT ON COLUMN order_flow.notification.kind IS
    'ack_request (a move asks for acknowledgement) or need_info (a request for information sent back to the originating department); escalations keep it';
COMMENT ON COLUMN order_flow.notification.from_state IS
    'The state the announced move left';
COMMENT ON COLUMN order_flow.notification.to_state IS
    'The state the announced move entered';
COMMENT ON COLUMN order_flow.notification.event_seq IS
    'The place in the order''s audit chain of the announced move';
COMMENT ON COLUMN order_flow.notification.parent_id IS
    'The notification this one follows: the one escalated, or the one answered need_info (NULL: a first request)';
COMMENT ON COLUMN order_flow.notification.escalates IS
    'Whether it goes up a level when unanswered at its deadline; false at the last level of the department''s chain, which stays pending and overdue';
COMMENT ON COLUMN order_flow.notification.created_at IS
    'When the notification was opened';
COMMENT ON COLUMN order_flow.notification.answered_at IS
    'When it was answered, escalated or closed (NULL: pending)';
COMMENT ON COLUMN order_flow.notification.answered_by IS
    'The actor who answered it, or who deleted the order (NULL: pending or escalated)';
COMMENT ON COLUMN order_flow.notification.response IS
    'What came with the answer: the need_info form, or the details of an ack (NULL: not answered)';

COMMENT ON COLUMN order_flow.outbox.id IS
    'Message id, unique but not ordered across sessions (an order''s messages go out by event_seq)';
COMMENT ON COLUMN order_flow.outbox.order_key IS
    'The order the message is about';
COMMENT ON COLUMN order_flow.outbox.notification_id IS
    'The notification the message announces (NULL: a stale-order reminder)';
COMMENT ON COLUMN order_flow.outbox.channel IS
    'Always order_flow, the channel of the matching NOTIFY; outbox_claim() neither reads nor returns it';
COMMENT ON COLUMN order_flow.outbox.payload IS
    'The message: the notification''s payload with its id, or the reminder';
COMMENT ON COLUMN order_flow.outbox.created_at IS
    'When the message was written (outbox_claim() returns it as occurred_at)';
COMMENT ON COLUMN order_flow.outbox.delivered_at IS
    'When outbox_done() marked it sent (NULL: not delivered yet)';
COMMENT ON COLUMN order_flow.outbox.attempts IS
    'How many times outbox_claim() has handed it out';
COMMENT ON COLUMN order_flow.outbox.kind IS
    'What the message announces: ack_request, escalation, need_info or reminder (NULL: written before 1.2)';
COMMENT ON COLUMN order_flow.outbox.event_seq IS
    'The place in the order''s audit chain of the event the message announces; relays deliver an order''s messages in this order';
COMMENT ON COLUMN order_flow.outbox.claimed_by IS
    'The actor whose outbox_claim() last leased the message';
COMMENT ON COLUMN order_flow.outbox.lease_until IS
    'Until when the message is leased to claimed_by; afterwards outbox_claim() hands it out again (NULL: never claimed, or delivered)';

COMMENT ON COLUMN order_flow.refused_attempt.id IS
    'Number of the record';
COMMENT ON COLUMN order_flow.refused_attempt.attempted_at IS
    'When the move was refused (server clock)';
COMMENT ON COLUMN order_flow.refused_attempt.recorded_at IS
    'When the refusal was written here, from the out-of-band queue (within about a second)';
COMMENT ON COLUMN order_flow.refused_attempt.actor IS
    'The acting person as claimed: the setting order_flow.actor, else session_user';
COMMENT ON COLUMN order_flow.refused_attempt.db_user IS
    'The database role that attempted it';
COMMENT ON COLUMN order_flow.refused_attempt.tbl IS
    'The managed table, as managed_table.tbl';
COMMENT ON COLUMN order_flow.refused_attempt.order_key IS
    'The order (NULL: refused before its key was read)';
COMMENT ON COLUMN order_flow.refused_attempt.from_state IS
    'The state the order was in (NULL: not known at the refusal)';
COMMENT ON COLUMN order_flow.refused_attempt.to_state IS
    'The state asked for (NULL: not known at the refusal)';
COMMENT ON COLUMN order_flow.refused_attempt.sqlstate IS
    'The SQLSTATE of the refusal (23514 invalid edge, 42501 not authorised, ...)';
COMMENT ON COLUMN order_flow.refused_attempt.reason IS
    'The refusal''s error message (its first 255 bytes)';

/* ------------------------------------------------------------------ */
/* Columns of the shipping station.                                    */
/* ------------------------------------------------------------------ */
COMMENT ON COLUMN order_flow.sku.sku IS
    'Article code';
COMMENT ON COLUMN order_flow.sku.barcode IS
    'The barcode the station scans (unique)';
COMMENT ON COLUMN order_flow.sku.name IS
    'Article name, shown to the station operator';
COMMENT ON COLUMN order_flow.sku.category IS
    'Product category';
COMMENT ON COLUMN order_flow.sku.weight_kg IS
    'Weight of one unit, in kg';
COMMENT ON COLUMN order_flow.sku.prohibited IS
    'Prohibited goods: a scan warns, station_ship() refuses the order, never offered as a substitute';
COMMENT ON COLUMN order_flow.sku.substitutes IS
    'Articles offered instead when stock is short (those in stock and not prohibited)';
COMMENT ON COLUMN order_flow.sku.unit_price IS
    'List price of one unit (not used by the station; NULL: unknown)';
COMMENT ON COLUMN order_flow.sku.unit_cost IS
    'Cost of one unit (not used by the station; NULL: unknown)';

COMMENT ON COLUMN order_flow.stock.sku IS
    'The article';
COMMENT ON COLUMN order_flow.stock.available IS
    'Units available to ship; station_ship() locks and decrements it';

COMMENT ON COLUMN order_flow.order_line.order_key IS
    'The order the line belongs to';
COMMENT ON COLUMN order_flow.order_line.sku IS
    'The article ordered';
COMMENT ON COLUMN order_flow.order_line.qty IS
    'Units ordered';
COMMENT ON COLUMN order_flow.order_line.scanned IS
    'Units scanned so far at the station (a warned scan is not counted, except stock_short)';
COMMENT ON COLUMN order_flow.order_line.unit_price IS
    'Price of one unit on this order (not used by the station; NULL: unknown)';

COMMENT ON COLUMN order_flow.package_preset.code IS
    'The code an operator picks at station_ship()';
COMMENT ON COLUMN order_flow.package_preset.name IS
    'Display name of the package';
COMMENT ON COLUMN order_flow.package_preset.max_weight_kg IS
    'Heaviest gross weight (contents plus tare) the package takes, in kg';
COMMENT ON COLUMN order_flow.package_preset.tare_kg IS
    'Weight of the empty package, in kg, added to that of the contents';

COMMENT ON COLUMN order_flow.freight_rule.id IS
    'Number of the rule';
COMMENT ON COLUMN order_flow.freight_rule.carrier IS
    'The carrier the rule prices (its waybill numbers come from waybill_pool)';
COMMENT ON COLUMN order_flow.freight_rule.region IS
    'Region the rule applies to (the order''s captured region attribute); * for any region';
COMMENT ON COLUMN order_flow.freight_rule.min_kg IS
    'Lowest gross weight the rule applies to, in kg (inclusive)';
COMMENT ON COLUMN order_flow.freight_rule.max_kg IS
    'Gross weight from which the rule no longer applies, in kg (exclusive)';
COMMENT ON COLUMN order_flow.freight_rule.base_fee IS
    'Fixed fee per shipment; freight = base_fee + per_kg x gross weight, rounded to 2 decimals';
COMMENT ON COLUMN order_flow.freight_rule.per_kg IS
    'Price per kg of gross weight';

COMMENT ON COLUMN order_flow.waybill_pool.carrier IS
    'The carrier whose number range this is';
COMMENT ON COLUMN order_flow.waybill_pool.prefix IS
    'Text put before the number in every waybill';
COMMENT ON COLUMN order_flow.waybill_pool.next_no IS
    'The next serial number to hand out';
COMMENT ON COLUMN order_flow.waybill_pool.last_no IS
    'The last serial number of the range (inclusive; next_no > last_no: exhausted)';
COMMENT ON COLUMN order_flow.waybill_pool.digits IS
    'Width to which the serial number is zero-padded';
COMMENT ON COLUMN order_flow.waybill_pool.check_digit IS
    'Check digit appended to the number: none, mod7 or mod11 (UPU S10 weights)';

COMMENT ON COLUMN order_flow.station_config.key IS
    'Setting name: stock_source (where stock is read and taken)';
COMMENT ON COLUMN order_flow.station_config.value IS
    'Setting value: for stock_source a table, view or foreign table with the columns of order_flow.stock (default order_flow.stock)';

COMMENT ON COLUMN order_flow.shipment.order_key IS
    'The shipped order';
COMMENT ON COLUMN order_flow.shipment.waybill IS
    'The waybill number assigned: prefix, zero-padded serial number, check digit';
COMMENT ON COLUMN order_flow.shipment.carrier IS
    'The carrier of the cheapest matching freight rule';
COMMENT ON COLUMN order_flow.shipment.package_preset IS
    'Code of the package preset chosen';
COMMENT ON COLUMN order_flow.shipment.weight_kg IS
    'Gross weight, contents plus tare, in kg';
COMMENT ON COLUMN order_flow.shipment.freight IS
    'Freight charged by the rule, rounded to 2 decimals';
COMMENT ON COLUMN order_flow.shipment.label IS
    'The label data station_ship() returned: waybill, carrier, customer, addressee, package, weight, freight, items';
COMMENT ON COLUMN order_flow.shipment.operator IS
    'The operator who shipped it (order_flow.actor, else session_user)';
COMMENT ON COLUMN order_flow.shipment.station IS
    'The station, from the setting order_flow.station (NULL: not set)';
COMMENT ON COLUMN order_flow.shipment.shipped_at IS
    'When it was shipped at the station';

COMMENT ON COLUMN order_flow.station_event.id IS
    'Number of the step';
COMMENT ON COLUMN order_flow.station_event.order_key IS
    'The order being worked on';
COMMENT ON COLUMN order_flow.station_event.operator IS
    'The operator (order_flow.actor, else session_user)';
COMMENT ON COLUMN order_flow.station_event.station IS
    'The station, from the setting order_flow.station (NULL: not set)';
COMMENT ON COLUMN order_flow.station_event.step IS
    'scan, preset (package chosen), ship, or error (a scan warned)';
COMMENT ON COLUMN order_flow.station_event.at IS
    'When the step was taken';
COMMENT ON COLUMN order_flow.station_event.dwell IS
    'Time since the same operator''s previous step (NULL: the operator''s first)';
COMMENT ON COLUMN order_flow.station_event.detail IS
    'The step''s data: barcode, quantity and warning of a scan, the package chosen, the waybill shipped';

COMMENT ON COLUMN order_flow.logistics_trace.id IS
    'Number of the trace event';
COMMENT ON COLUMN order_flow.logistics_trace.tracking_no IS
    'The waybill number the carrier reported on (shipment.waybill)';
COMMENT ON COLUMN order_flow.logistics_trace.order_key IS
    'The order shipped under that waybill';
COMMENT ON COLUMN order_flow.logistics_trace.status IS
    'The carrier''s status; in_transit and delivered move the order on';
COMMENT ON COLUMN order_flow.logistics_trace.at IS
    'When it happened, as the carrier reports it';
COMMENT ON COLUMN order_flow.logistics_trace.location IS
    'Where it happened, as the carrier reports it (NULL: not given)';
COMMENT ON COLUMN order_flow.logistics_trace.recorded_at IS
    'When logistics_update() recorded it (server clock)';

/* ------------------------------------------------------------------ */
/* Columns of the metrics rollup and its configuration.                */
/* ------------------------------------------------------------------ */
COMMENT ON COLUMN order_flow.order_fact.order_key IS
    'The order';
COMMENT ON COLUMN order_flow.order_fact.customer_key IS
    'The customer captured by the order''s latest state change naming one, else its tracked one (NULL: none)';
COMMENT ON COLUMN order_flow.order_fact.attrs_seq IS
    'Sequence number of the state change whose customer and attributes the row holds (-1: none yet)';
COMMENT ON COLUMN order_flow.order_fact.region IS
    'Captured attribute region (NULL: none)';
COMMENT ON COLUMN order_flow.order_fact.customer_class IS
    'Captured attribute customer_class, else grade (NULL: neither)';
COMMENT ON COLUMN order_flow.order_fact.category IS
    'Captured attribute category (NULL: none)';
COMMENT ON COLUMN order_flow.order_fact.amount IS
    'Captured attribute amount, as a number (NULL: none, or not a number)';
COMMENT ON COLUMN order_flow.order_fact.promised_ship_date IS
    'Captured attribute promised_ship_date, as a date (NULL: none, or not a date): shipped before its end in the business time zone is on time';
COMMENT ON COLUMN order_flow.order_fact.ordered_at IS
    'occurred_at of the order''s first event';
COMMENT ON COLUMN order_flow.order_fact.contract_signed_at IS
    'Business time of the order''s first move into contract_signed (NULL: never)';
COMMENT ON COLUMN order_flow.order_fact.shipped_at IS
    'Business time of the order''s first move into shipped (NULL: never)';
COMMENT ON COLUMN order_flow.order_fact.first_logistics_at IS
    'The earliest of its first move into shipped and its carrier trace events (NULL: none)';
COMMENT ON COLUMN order_flow.order_fact.delivered_at IS
    'Business time of the order''s first move into delivered (NULL: never)';
COMMENT ON COLUMN order_flow.order_fact.accepted_at IS
    'Business time of the order''s first move into accepted (NULL: never)';
COMMENT ON COLUMN order_flow.order_fact.rework_return IS
    'The order entered rework or returned, or had an exception of type rework, return, returned or reshipment';
COMMENT ON COLUMN order_flow.order_fact.exceptions IS
    'Number of its exception events (moves by an edge with an exception type, exception records)';
COMMENT ON COLUMN order_flow.order_fact.payments IS
    'Number of its payment records';
COMMENT ON COLUMN order_flow.order_fact.payments_late IS
    'Payments paid after their due_date';
COMMENT ON COLUMN order_flow.order_fact.payment_due_amount IS
    'Sum of the amounts of payments that name a due_date';
COMMENT ON COLUMN order_flow.order_fact.paid_on_time_amount IS
    'Of those, the amount paid on or before its due_date (paid_date, else the event''s UTC date)';
COMMENT ON COLUMN order_flow.order_fact.service_requests IS
    'Number of its service_request records';
COMMENT ON COLUMN order_flow.order_fact.complaints IS
    'Number of its complaint records';

COMMENT ON COLUMN order_flow.exception_fact.order_key IS
    'The order';
COMMENT ON COLUMN order_flow.exception_fact.event_id IS
    'The exception event, as audit_log.id';
COMMENT ON COLUMN order_flow.exception_fact.exception_type IS
    'Its exception type (the edge''s, or the record''s details.exception_type)';
COMMENT ON COLUMN order_flow.exception_fact.occurred_at IS
    'Business time of the event';
COMMENT ON COLUMN order_flow.exception_fact.action IS
    'The event''s audit action (transition, import, exception, ...)';

COMMENT ON COLUMN order_flow.citus_fold_stage.order_key IS
    'The order''s key in the rollup: its order key, or tenant/key for a table distributed by tenant';
COMMENT ON COLUMN order_flow.citus_fold_stage.id IS
    'The event''s id in its companion log';
COMMENT ON COLUMN order_flow.citus_fold_stage.seq IS
    'The event''s place in its order''s chain';
COMMENT ON COLUMN order_flow.citus_fold_stage.action IS
    'The event''s action, as in audit_log';
COMMENT ON COLUMN order_flow.citus_fold_stage.from_state IS
    'State before the event; NULL for events that carry no state';
COMMENT ON COLUMN order_flow.citus_fold_stage.to_state IS
    'State after the event; NULL for events that carry no state';
COMMENT ON COLUMN order_flow.citus_fold_stage.occurred_at IS
    'When the event occurred (business time)';
COMMENT ON COLUMN order_flow.citus_fold_stage.details IS
    'The event''s details, as in audit_log';

COMMENT ON COLUMN order_flow.metrics_watermark.order_key IS
    'The order';
COMMENT ON COLUMN order_flow.metrics_watermark.folded_seq IS
    'Highest sequence number of the order''s chain folded into the rollup';

COMMENT ON COLUMN order_flow.fold_progress.id IS
    'Always true: the table has one row';
COMMENT ON COLUMN order_flow.fold_progress.folded_until IS
    'Every event recorded before this time is in the rollup';
COMMENT ON COLUMN order_flow.fold_progress.folded_at IS
    'When a fold last ran';
COMMENT ON COLUMN order_flow.fold_progress.orders_folded IS
    'Running total of orders with events folded (an order counts once per fold that took its events)';

COMMENT ON COLUMN order_flow.kpi_month.month_start IS
    'Start of the UTC calendar month whose orders (by first contract signing) the state covers';
COMMENT ON COLUMN order_flow.kpi_month.month_end IS
    'Start of the next UTC month (exclusive end)';
COMMENT ON COLUMN order_flow.kpi_month.time_zone IS
    'The business time zone the state was built in (promised dates end at midnight there); kpi() uses the state only while that is still the business time zone';
COMMENT ON COLUMN order_flow.kpi_month.watermark IS
    'Highest kpi_dirty id when the state was built: a mark of this month numbered above it makes the state stale';
COMMENT ON COLUMN order_flow.kpi_month.orders IS
    'Number of orders in the state';
COMMENT ON COLUMN order_flow.kpi_month.state IS
    'The serialised kpi_summary state of those orders (NULL: the month has none)';
COMMENT ON COLUMN order_flow.kpi_month.built_at IS
    'When the state was built';

COMMENT ON COLUMN order_flow.kpi_dirty.id IS
    'Mark number, handed out in time order (compared with kpi_month.watermark)';
COMMENT ON COLUMN order_flow.kpi_dirty.month IS
    'Start of the UTC month of contract signing whose cached state a change made stale (as kpi_month.month_start)';

COMMENT ON COLUMN order_flow.health_weight.dimension IS
    'One of the twelve customer_health dimensions';
COMMENT ON COLUMN order_flow.health_weight.weight IS
    'Its share of the score, 0 to 1 (the weights sum to 1)';
COMMENT ON COLUMN order_flow.health_weight.bad IS
    'The dimension''s value that scores 0 (per order for the counts overdue_payments, service_requests, complaints)';
COMMENT ON COLUMN order_flow.health_weight.good IS
    'The value that scores 1; linear in between, clamped beyond';
COMMENT ON COLUMN order_flow.health_weight.description IS
    'What the dimension measures, in words';

COMMENT ON COLUMN order_flow.health_threshold.rating IS
    'red, yellow or green';
COMMENT ON COLUMN order_flow.health_threshold.min_score IS
    'Lowest score (0-100) with this rating, rising red < yellow < green (any score below yellow''s is red)';

COMMENT ON COLUMN order_flow.season.region IS
    'Region the row applies to (* = every region without its own row for that month)';
COMMENT ON COLUMN order_flow.season.month IS
    'Calendar month, 1 to 12';
COMMENT ON COLUMN order_flow.season.season IS
    'Name of the season (winter, spring, summer, autumn, rainy, ...)';

/* ------------------------------------------------------------------ */
/* Columns of restore and checkpoint bookkeeping.                      */
/* ------------------------------------------------------------------ */
COMMENT ON COLUMN order_flow.restore_pending.id IS
    'Number of the waiting row';
COMMENT ON COLUMN order_flow.restore_pending.relid IS
    'The table the row belongs in';
COMMENT ON COLUMN order_flow.restore_pending.waits_for IS
    'The parent table whose load it waits for';
COMMENT ON COLUMN order_flow.restore_pending.row_data IS
    'The row, as a JSON object';
COMMENT ON COLUMN order_flow.restore_pending.stashed_at IS
    'When the row was set aside';

COMMENT ON COLUMN order_flow.audit_checkpoint_head.checkpoint_id IS
    'The checkpoint, by the number audit_checkpoint() returned as "checkpoint"';
COMMENT ON COLUMN order_flow.audit_checkpoint_head.order_key IS
    'The chain';
COMMENT ON COLUMN order_flow.audit_checkpoint_head.seq IS
    'Sequence number of the chain''s last event at the checkpoint';
COMMENT ON COLUMN order_flow.audit_checkpoint_head.hash IS
    'That event''s hash';

/* ------------------------------------------------------------------ */
/* Columns of the views.                                               */
/* ------------------------------------------------------------------ */
COMMENT ON COLUMN order_flow.pending_acks.notification_id IS
    'The open notification (notification.id, what acknowledge() takes)';
COMMENT ON COLUMN order_flow.pending_acks.order_key IS
    'The order it is about';
COMMENT ON COLUMN order_flow.pending_acks.department IS
    'The department asked to answer';
COMMENT ON COLUMN order_flow.pending_acks.level IS
    'Current escalation level (1: first request)';
COMMENT ON COLUMN order_flow.pending_acks.deadline IS
    'When the answer is due';
COMMENT ON COLUMN order_flow.pending_acks.seconds_left IS
    'Whole seconds until the deadline; 0 once it has passed';
COMMENT ON COLUMN order_flow.pending_acks.overdue IS
    'The deadline has passed';
COMMENT ON COLUMN order_flow.pending_acks.kind IS
    'ack_request or need_info';
COMMENT ON COLUMN order_flow.pending_acks.level_title IS
    'Who answers at this level (escalation_policy.title; NULL: the department has no such level)';
COMMENT ON COLUMN order_flow.pending_acks.from_state IS
    'The state the announced move left';
COMMENT ON COLUMN order_flow.pending_acks.to_state IS
    'The state the announced move entered';
COMMENT ON COLUMN order_flow.pending_acks.payload IS
    'The structured message sent';
COMMENT ON COLUMN order_flow.pending_acks.created_at IS
    'When the notification was opened';

COMMENT ON COLUMN order_flow.stale_orders.order_key IS
    'The waiting order';
COMMENT ON COLUMN order_flow.stale_orders.tbl IS
    'The managed table it lives in';
COMMENT ON COLUMN order_flow.stale_orders.workflow IS
    'Its workflow';
COMMENT ON COLUMN order_flow.stale_orders.state IS
    'The state it is waiting in';
COMMENT ON COLUMN order_flow.stale_orders.owner_department IS
    'The department responsible for that state (NULL: none)';
COMMENT ON COLUMN order_flow.stale_orders.entered_at IS
    'When it entered the state';
COMMENT ON COLUMN order_flow.stale_orders.waiting IS
    'How long it has waited there (now() - entered_at)';
COMMENT ON COLUMN order_flow.stale_orders.max_dwell IS
    'The state''s "cannot wait" threshold, which waiting has reached';
COMMENT ON COLUMN order_flow.stale_orders.reminder_level IS
    'Highest reminder level raised so far (0: none yet)';
COMMENT ON COLUMN order_flow.stale_orders.customer_key IS
    'Its customer (NULL: none captured)';
COMMENT ON COLUMN order_flow.stale_orders.attributes IS
    'Its captured attributes, as a JSON object';

COMMENT ON COLUMN order_flow.station_heatmap.operator IS
    'The station operator';
COMMENT ON COLUMN order_flow.station_heatmap.step IS
    'The station step: scan (failed scans included), preset or ship';
COMMENT ON COLUMN order_flow.station_heatmap.steps IS
    'How many such steps the operator took (failed ones included)';
COMMENT ON COLUMN order_flow.station_heatmap.mean_dwell_seconds IS
    'Mean time since the operator''s previous step, in seconds (NULL: no previous step)';
COMMENT ON COLUMN order_flow.station_heatmap.p90_dwell_seconds IS
    '90th percentile of that time, in seconds (NULL: no previous step)';
COMMENT ON COLUMN order_flow.station_heatmap.errors IS
    'How many of these steps went wrong (a scan of the wrong item or quantity); 0 for preset and ship';

COMMENT ON COLUMN order_flow.exception_pareto.exception_type IS
    'The exception type';
COMMENT ON COLUMN order_flow.exception_pareto.count IS
    'Number of exception events of this type (moves by an edge with this type, exception records)';
COMMENT ON COLUMN order_flow.exception_pareto.share IS
    'Its share of all exception events, 0 to 1';
COMMENT ON COLUMN order_flow.exception_pareto.cumulative_share IS
    'Share of this type and every type ranked before it, 0 to 1';
COMMENT ON COLUMN order_flow.exception_pareto.rank IS
    'Rank by count, 1 = most frequent (ties by name)';

COMMENT ON COLUMN order_flow.customer_health.customer_key IS
    'The customer';
COMMENT ON COLUMN order_flow.customer_health.order_frequency IS
    'Orders per month over the last 12 complete calendar months (of the business time zone, as every month here)';
COMMENT ON COLUMN order_flow.customer_health.recency_days IS
    'Days (with fractions) since the latest order (NULL: no dated order)';
COMMENT ON COLUMN order_flow.customer_health.category_breadth IS
    'Number of distinct product categories ordered';
COMMENT ON COLUMN order_flow.customer_health.payment_punctuality IS
    'Share of the amount due paid by its due date, 0 to 1 (NULL: no payment with a due date)';
COMMENT ON COLUMN order_flow.customer_health.overdue_payments IS
    'Number of payments made after their due date';
COMMENT ON COLUMN order_flow.customer_health.service_requests IS
    'Number of service requests recorded';
COMMENT ON COLUMN order_flow.customer_health.complaints IS
    'Number of complaints recorded';
COMMENT ON COLUMN order_flow.customer_health.on_time_rate IS
    'Share of shipped orders shipped on time, 0 to 1: by the end of the promised date, else within 48 h of contract signing (NULL: none shipped)';
COMMENT ON COLUMN order_flow.customer_health.first_time_right_rate IS
    'Share of delivered orders accepted without rework or return, 0 to 1 (NULL: none delivered)';
COMMENT ON COLUMN order_flow.customer_health.return_rework_rate IS
    'Share of delivered orders reworked or returned, 0 to 1 (NULL: none delivered)';
COMMENT ON COLUMN order_flow.customer_health.order_value_trend IS
    'Least-squares slope of monthly order value over the last 6 complete months, divided by the mean monthly value (0.05 = +5 % a month; NULL: no value)';
COMMENT ON COLUMN order_flow.customer_health.order_volatility IS
    'Coefficient of variation (population) of the order counts of the last 3 complete months (NULL: no order in them)';
COMMENT ON COLUMN order_flow.customer_health.score IS
    'Health score 0-100, one decimal: weighted dimensions scored by health_weight (NULL dimensions left out; NULL: none left)';
COMMENT ON COLUMN order_flow.customer_health.rating IS
    'red, yellow or green by health_threshold (NULL: no score)';
COMMENT ON COLUMN order_flow.customer_health.orders IS
    'Number of the customer''s orders, all time';
COMMENT ON COLUMN order_flow.customer_health.orders_3_months_ago IS
    'Orders of the complete calendar month three months back';
COMMENT ON COLUMN order_flow.customer_health.orders_2_months_ago IS
    'Orders of the complete calendar month two months back';
COMMENT ON COLUMN order_flow.customer_health.orders_last_month IS
    'Orders of the last complete calendar month';

COMMENT ON COLUMN order_flow.order_timeline.order_key IS
    'The order';
COMMENT ON COLUMN order_flow.order_timeline.customer_key IS
    'Its customer (NULL: none captured)';
COMMENT ON COLUMN order_flow.order_timeline.workflow IS
    'Its workflow';
COMMENT ON COLUMN order_flow.order_timeline.state IS
    'Its current state (NULL: deleted)';
COMMENT ON COLUMN order_flow.order_timeline.created_at IS
    'Business time of its created event, else of its first event (NULL: neither known)';
COMMENT ON COLUMN order_flow.order_timeline.contract_signed_at IS
    'When it first reached a state stamping contract_signed (NULL: never)';
COMMENT ON COLUMN order_flow.order_timeline.warehouse_confirmed_at IS
    'When it first reached a state stamping warehouse_confirmed (NULL: never)';
COMMENT ON COLUMN order_flow.order_timeline.finance_approved_at IS
    'When it first reached a state stamping finance_approved (NULL: never)';
COMMENT ON COLUMN order_flow.order_timeline.shipped_at IS
    'When it first reached a state stamping shipped (NULL: never)';
COMMENT ON COLUMN order_flow.order_timeline.first_logistics_at IS
    'Its first logistics update: the earliest of its shipment and any carrier trace (NULL: none)';
COMMENT ON COLUMN order_flow.order_timeline.delivered_at IS
    'When it was first delivered (NULL: never)';
COMMENT ON COLUMN order_flow.order_timeline.accepted_at IS
    'When it was first accepted (NULL: never)';
COMMENT ON COLUMN order_flow.order_timeline.hours_created_to_contract IS
    'Hours from created_at to contract_signed_at (NULL: either missing)';
COMMENT ON COLUMN order_flow.order_timeline.hours_contract_to_warehouse IS
    'Hours from contract_signed_at to warehouse_confirmed_at (NULL: either missing)';
COMMENT ON COLUMN order_flow.order_timeline.hours_warehouse_to_finance IS
    'Hours from warehouse_confirmed_at to finance_approved_at (NULL: either missing)';
COMMENT ON COLUMN order_flow.order_timeline.hours_finance_to_shipped IS
    'Hours from finance_approved_at to shipped_at (NULL: either missing)';
COMMENT ON COLUMN order_flow.order_timeline.hours_to_first_logistics IS
    'Hours from contract_signed_at to first_logistics_at (NULL: either missing)';
COMMENT ON COLUMN order_flow.order_timeline.processing_hours IS
    'Hours from contract_signed_at to shipped_at (NULL: either missing)';

COMMENT ON COLUMN order_flow.state_durations.order_key IS
    'The order';
COMMENT ON COLUMN order_flow.state_durations.state IS
    'The state visited';
COMMENT ON COLUMN order_flow.state_durations.visit IS
    '1 for the order''s first visit to this state, 2 for the second, ...';
COMMENT ON COLUMN order_flow.state_durations.seq IS
    'Sequence number of the move into the state';
COMMENT ON COLUMN order_flow.state_durations.entered_at IS
    'Business time of that move';
COMMENT ON COLUMN order_flow.state_durations.left_at IS
    'Business time of the order''s next move (NULL: none since)';
COMMENT ON COLUMN order_flow.state_durations.wall_hours IS
    'Hours from entered_at to left_at, or to now() without a next move (NULL then in a terminal state)';
COMMENT ON COLUMN order_flow.state_durations.business_hours IS
    'The same span in working hours of calendar (equal to wall_hours on an always-open calendar)';
COMMENT ON COLUMN order_flow.state_durations.owner_department IS
    'The department responsible for the state (NULL: none)';
COMMENT ON COLUMN order_flow.state_durations.calendar IS
    'The calendar business_hours is counted on: the owner department''s, else 24x7';
COMMENT ON COLUMN order_flow.state_durations.category IS
    'The state''s category (initial, active, exception, terminal)';
COMMENT ON COLUMN order_flow.state_durations.max_dwell IS
    'The state''s "cannot wait" threshold (NULL: none)';
COMMENT ON COLUMN order_flow.state_durations.exception_type IS
    'Exception type recorded by the move into the state (NULL: none)';
COMMENT ON COLUMN order_flow.state_durations.route IS
    'The order''s whole route, its states in the order entered, joined by >';

COMMENT ON COLUMN order_flow.delay_events.order_key IS
    'The delayed order';
COMMENT ON COLUMN order_flow.delay_events.customer_key IS
    'Its customer (NULL: none captured)';
COMMENT ON COLUMN order_flow.delay_events.region IS
    'Its region (NULL: none captured)';
COMMENT ON COLUMN order_flow.delay_events.customer_class IS
    'Its customer class (NULL: none captured)';
COMMENT ON COLUMN order_flow.delay_events.occurred_at IS
    'When the delay began: entry into the state, or the exception record''s time';
COMMENT ON COLUMN order_flow.delay_events.month IS
    'First day of the calendar month (business time zone) in which the delay began';
COMMENT ON COLUMN order_flow.delay_events.season IS
    'Season of that month in the order''s region, else of every region (NULL: none configured)';
COMMENT ON COLUMN order_flow.delay_events.kind IS
    'exception (an exception event) or dwell (a visit beyond the state''s max_dwell)';
COMMENT ON COLUMN order_flow.delay_events.reason IS
    'The exception type, or dwell:<state>';
COMMENT ON COLUMN order_flow.delay_events.hours_lost IS
    'Hours lost: in the exception state (to now() while there, 0 in a terminal state), a record''s details.hours_lost (else 0), or hours beyond max_dwell';

COMMENT ON COLUMN order_flow.delay_reasons.region IS
    'Region of the delayed orders (NULL: none captured)';
COMMENT ON COLUMN order_flow.delay_reasons.customer_class IS
    'Their customer class (NULL: none captured)';
COMMENT ON COLUMN order_flow.delay_reasons.month IS
    'First day of the calendar month (business time zone) in which the delays began';
COMMENT ON COLUMN order_flow.delay_reasons.month_of_year IS
    'That month''s number, 1 to 12';
COMMENT ON COLUMN order_flow.delay_reasons.season IS
    'That month''s season for the region (NULL: none configured)';
COMMENT ON COLUMN order_flow.delay_reasons.kind IS
    'exception or dwell';
COMMENT ON COLUMN order_flow.delay_reasons.reason IS
    'The exception type, or dwell:<state>';
COMMENT ON COLUMN order_flow.delay_reasons.orders IS
    'Number of distinct orders delayed for this reason';
COMMENT ON COLUMN order_flow.delay_reasons.occurrences IS
    'Number of delays';
COMMENT ON COLUMN order_flow.delay_reasons.hours_lost IS
    'Hours lost in all, as delay_events.hours_lost';

COMMENT ON COLUMN order_flow.monitor.datname IS
    'This database';
COMMENT ON COLUMN order_flow.monitor.scheduler_pid IS
    'Process id of this database''s scheduler (NULL: none running, or the library is not preloaded)';
COMMENT ON COLUMN order_flow.monitor.scheduler_alive IS
    'A scheduler is running for this database';
COMMENT ON COLUMN order_flow.monitor.last_sweep IS
    'When its last escalation sweep ended (NULL: none yet)';
COMMENT ON COLUMN order_flow.monitor.seconds_since_sweep IS
    'Seconds since then (NULL: no sweep yet); grows to about order_flow.naptime when quiet';
COMMENT ON COLUMN order_flow.monitor.no_worker_slot IS
    'The scheduler could not start for want of a background worker slot (raise max_worker_processes)';
COMMENT ON COLUMN order_flow.monitor.overdue_acks IS
    'Pending notifications past their deadline';
COMMENT ON COLUMN order_flow.monitor.oldest_overdue_seconds IS
    'Seconds since the earliest of those deadlines (NULL: none overdue)';
COMMENT ON COLUMN order_flow.monitor.outbox_backlog IS
    'Outbox messages not yet delivered';
COMMENT ON COLUMN order_flow.monitor.outbox_oldest_seconds IS
    'Age of the oldest of them, in seconds (NULL: none)';
COMMENT ON COLUMN order_flow.monitor.refused_total IS
    'Refused moves queued out of band since the server started, all databases together (0 also when the library is not preloaded)';
COMMENT ON COLUMN order_flow.monitor.refused_dropped IS
    'Of those, how many were lost because the queue was full';
COMMENT ON COLUMN order_flow.monitor.metrics_fold_lag_seconds IS
    'How far the metrics rollup may lag behind the audit log, in seconds (0: every event folded)';
COMMENT ON COLUMN order_flow.monitor.kpi_cache_months IS
    'Months held in the kpi() cache for the current business time zone';
COMMENT ON COLUMN order_flow.monitor.kpi_cache_dirty_months IS
    'Months marked changed since their cached state was built (read raw until rebuilt)';

/* ------------------------------------------------------------------ */
/* Functions.                                                          */
/* ------------------------------------------------------------------ */
COMMENT ON FUNCTION order_flow._transition_trigger() IS
    'The row trigger manage() puts on a managed table (order_flow_transition): validates, stamps, audits and broadcasts every move; internal, but in this schema because the trigger names it';
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

COMMENT ON FUNCTION _order_flow.status_in(cstring) IS 'Input of order_flow.status: a state name';
COMMENT ON FUNCTION _order_flow.status_out(order_flow.status) IS 'Output of order_flow.status: the state name (name@position in pg_dump)';
COMMENT ON FUNCTION _order_flow.status_recv(internal) IS 'Binary input of order_flow.status: the state name';
COMMENT ON FUNCTION _order_flow.status_send(order_flow.status) IS 'Binary output of order_flow.status: the state name';
COMMENT ON FUNCTION _order_flow.status_eq(order_flow.status, order_flow.status) IS 'Support of = for order_flow.status';
COMMENT ON FUNCTION _order_flow.status_ne(order_flow.status, order_flow.status) IS 'Support of <> for order_flow.status';
COMMENT ON FUNCTION _order_flow.status_lt(order_flow.status, order_flow.status) IS 'Support of < for order_flow.status (process order)';
COMMENT ON FUNCTION _order_flow.status_le(order_flow.status, order_flow.status) IS 'Support of <= for order_flow.status (process order)';
COMMENT ON FUNCTION _order_flow.status_gt(order_flow.status, order_flow.status) IS 'Support of > for order_flow.status (process order)';
COMMENT ON FUNCTION _order_flow.status_ge(order_flow.status, order_flow.status) IS 'Support of >= for order_flow.status (process order)';
COMMENT ON FUNCTION _order_flow.status_cmp(order_flow.status, order_flow.status) IS 'btree comparison of order_flow.status (process order)';
COMMENT ON FUNCTION _order_flow.status_hash(order_flow.status) IS 'Hash of order_flow.status';
COMMENT ON FUNCTION _order_flow.status_hash_extended(order_flow.status, bigint) IS 'Seeded hash of order_flow.status';
COMMENT ON FUNCTION _order_flow.status_to_text(order_flow.status) IS 'Cast order_flow.status -> text: the state name';
COMMENT ON FUNCTION _order_flow.status_from_text(text) IS 'Cast text -> order_flow.status: a known state name (22P02 otherwise)';
COMMENT ON FUNCTION _order_flow.status_position(order_flow.status) IS 'The state''s position in the process order';
COMMENT ON FUNCTION _order_flow.status_larger(order_flow.status, order_flow.status) IS 'The later of two states (max() support)';
COMMENT ON FUNCTION _order_flow.status_smaller(order_flow.status, order_flow.status) IS 'The earlier of two states (min() support)';
COMMENT ON FUNCTION _order_flow.status_lt_text(order_flow.status, text) IS 'status < text, the text read as a state name';
COMMENT ON FUNCTION _order_flow.status_le_text(order_flow.status, text) IS 'status <= text, the text read as a state name';
COMMENT ON FUNCTION _order_flow.status_gt_text(order_flow.status, text) IS 'status > text, the text read as a state name';
COMMENT ON FUNCTION _order_flow.status_ge_text(order_flow.status, text) IS 'status >= text, the text read as a state name';
COMMENT ON FUNCTION _order_flow.text_lt_status(text, order_flow.status) IS 'text < status, the text read as a state name';
COMMENT ON FUNCTION _order_flow.text_le_status(text, order_flow.status) IS 'text <= status, the text read as a state name';
COMMENT ON FUNCTION _order_flow.text_gt_status(text, order_flow.status) IS 'text > status, the text read as a state name';
COMMENT ON FUNCTION _order_flow.text_ge_status(text, order_flow.status) IS 'text >= status, the text read as a state name';
