/*
 * src/sql/privileges.sql
 *
 * Who may execute what, and who may read the views.  Restated by every
 * update, so the functions' privileges are always the extension's own;
 * PUBLIC may execute exactly the functions listed in README.md.
 */

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA order_flow FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA _order_flow FROM PUBLIC;

/* as for order_flow: what a role may call is decided function by function */
GRANT USAGE ON SCHEMA _order_flow TO PUBLIC;

GRANT EXECUTE ON FUNCTION
    _order_flow.status_in(cstring), _order_flow.status_out(order_flow.status),
    _order_flow.status_recv(internal), _order_flow.status_send(order_flow.status),
    _order_flow.status_eq(order_flow.status, order_flow.status),
    _order_flow.status_ne(order_flow.status, order_flow.status),
    _order_flow.status_lt(order_flow.status, order_flow.status),
    _order_flow.status_le(order_flow.status, order_flow.status),
    _order_flow.status_gt(order_flow.status, order_flow.status),
    _order_flow.status_ge(order_flow.status, order_flow.status),
    _order_flow.status_cmp(order_flow.status, order_flow.status),
    _order_flow.status_hash(order_flow.status),
    _order_flow.status_hash_extended(order_flow.status, bigint),
    _order_flow.status_to_text(order_flow.status), _order_flow.status_from_text(text),
    _order_flow.status_position(order_flow.status),
    _order_flow.status_larger(order_flow.status, order_flow.status),
    _order_flow.status_smaller(order_flow.status, order_flow.status),
    pg_catalog.max(order_flow.status), pg_catalog.min(order_flow.status),
    _order_flow.status_lt_text(order_flow.status, text), _order_flow.status_le_text(order_flow.status, text),
    _order_flow.status_gt_text(order_flow.status, text), _order_flow.status_ge_text(order_flow.status, text),
    _order_flow.text_lt_status(text, order_flow.status), _order_flow.text_le_status(text, order_flow.status),
    _order_flow.text_gt_status(text, order_flow.status), _order_flow.text_ge_status(text, order_flow.status),
    order_flow.current_actor(), order_flow.is_admin(), _order_flow._loading(),
    order_flow.transition(regclass, text, text, text, jsonb),
    _order_flow._move(regclass, text, text, text, jsonb, text, timestamptz),
    _order_flow._citus_distributed(regclass),
    _order_flow._citus_move(regclass, name, text, name, text, text, text, text, jsonb, text, timestamptz),
    _order_flow._set_context(text, text, text, jsonb, timestamptz),
    _order_flow._take_context_result(),
    _order_flow._managed(regclass),
    _order_flow._caller_may_read(regclass),
    order_flow.allowed_transitions(regclass, text),
    order_flow.acknowledge(bigint, text, jsonb)
TO PUBLIC;

GRANT EXECUTE ON FUNCTION
    order_flow._transition_trigger(),
    order_flow.manage(regclass, name, name, text, name, name[]),
    order_flow.unmanage(regclass, boolean),
    order_flow.import_transition(regclass, text, text, timestamptz, jsonb),
    order_flow.record(text, text, jsonb),
    order_flow.verify_audit(text),
    order_flow.validate_workflow(text),
    order_flow.acknowledge(bigint, text, jsonb),
    order_flow.escalate_due(timestamptz),
    order_flow.worker_status(),
    order_flow.business_deadline(text, timestamptz, interval),
    order_flow.department_deadline(text, timestamptz, interval),
    order_flow.create_status(text, text, text),
    order_flow.event_hash(bytea, text, bigint, text, text, text, text, text, timestamptz, timestamptz, jsonb)
TO order_flow_admin;

GRANT EXECUTE ON FUNCTION
    order_flow.station_scan(text, text, integer),
    order_flow.station_ship(text, text),
    order_flow.logistics_update(text, text, timestamptz, text),
    order_flow.grant_station_operator(regrole),
    order_flow.waybill_check_digit(text, bigint)
TO order_flow_admin;

/* ------------------------------------------------------------------ */
/* Privileges and dump.                                                */
/* ------------------------------------------------------------------ */
REVOKE ALL ON FUNCTION order_flow.metrics_rebuild(),
    _order_flow._validate_health(), order_flow.kpi(timestamptz, timestamptz),
    order_flow.top_delay_reasons(text, text, integer[], integer) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION order_flow.metrics_rebuild(), order_flow.kpi(timestamptz, timestamptz),
    order_flow.top_delay_reasons(text, text, integer[], integer)
TO order_flow_admin;

/* Pure functions that read nothing private: whoever may read a view that
   uses them may call them. */
GRANT EXECUTE ON FUNCTION _order_flow._metric_number(jsonb), _order_flow._metric_date(jsonb),
    order_flow.business_hours(text, timestamptz, timestamptz),
    _order_flow._health_score(float8[], float8[], float8[], float8[]),
    order_flow.order_frequency(timestamptz, float8, timestamptz),
    order_flow.order_volatility(timestamptz, float8, timestamptz),
    order_flow.order_value_trend(timestamptz, float8, timestamptz),
    order_flow.monthly_orders(timestamptz, float8, timestamptz),
    order_flow.breadth(text), order_flow.median(float8),
    order_flow.health_profile(timestamptz, float8, text, timestamptz, timestamptz, date, timestamptz,
                              timestamptz, boolean, float8, float8, integer, integer, integer, timestamptz),
    order_flow.kpi_summary(timestamptz, timestamptz, timestamptz, date, timestamptz, timestamptz,
                           boolean, integer),
    order_flow.business_time_zone(), _order_flow._business_date(timestamptz)
TO PUBLIC;

REVOKE ALL ON FUNCTION order_flow.kpi_cache_refresh(integer), _order_flow._kpi_cache_clear(),
    _order_flow._kpi_marks_spent() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION order_flow.kpi_cache_refresh(integer) TO order_flow_admin;

GRANT EXECUTE ON FUNCTION _order_flow._kpi_merge_trans(internal, bytea),
    _order_flow._kpi_partial(timestamptz, timestamptz, timestamptz, date, timestamptz, timestamptz,
                            boolean, integer),
    _order_flow._kpi_merge(bytea)
TO PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._read_as_owner(regclass, name, name, name, name[], text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION _order_flow._read_as_owner(regclass, name, name, name, name[], text) TO order_flow_admin;

REVOKE ALL ON FUNCTION order_flow._refuse_truncate() FROM PUBLIC;

GRANT EXECUTE ON FUNCTION order_flow._refuse_truncate() TO order_flow_admin;

REVOKE ALL ON FUNCTION _order_flow._attach_triggers(regclass, name, name, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION _order_flow._attach_triggers(regclass, name, name, text) TO order_flow_admin;
GRANT EXECUTE ON FUNCTION _order_flow._citus_tenant_key(regclass, smallint),
    _order_flow._citus_tenant_column(regclass, smallint) TO order_flow_admin;

REVOKE ALL ON FUNCTION _order_flow._verify_chains(text) FROM PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._verify_rows(text) FROM PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._checkpoint_digest(bigint) FROM PUBLIC;

/* pure, reads nothing: whoever may read the views may call it */
GRANT EXECUTE ON FUNCTION _order_flow._hours(timestamptz, timestamptz) TO PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._fold_catch_up_wanted() FROM PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._metrics_fold_orders(text[]) FROM PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._kpi_mark(timestamptz) FROM PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._metrics_fold_window(timestamptz, timestamptz, boolean) FROM PUBLIC;

REVOKE ALL ON FUNCTION _order_flow._metrics_fold_window(timestamptz, timestamptz, boolean),
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

/* ------------------------------------------------------------------ */
/* Views: administrators read them; PUBLIC does not.                   */
/* ------------------------------------------------------------------ */
GRANT SELECT ON order_flow.pending_acks, order_flow.stale_orders, order_flow.station_heatmap,
    order_flow.order_timeline, order_flow.state_durations, order_flow.exception_pareto,
    order_flow.delay_events, order_flow.delay_reasons, order_flow.customer_health
TO order_flow_admin;

/*
 * Reporting: order_flow_reader reads every view and runs the report
 * functions -- what a BI tool needs (README: Reporting from a BI tool) --
 * and nothing else: no table of the extension, no event details, no
 * configuration changes.  Grant it to the BI tool's login role.
 */
GRANT SELECT ON order_flow.pending_acks, order_flow.stale_orders, order_flow.station_heatmap,
    order_flow.order_timeline, order_flow.state_durations, order_flow.exception_pareto,
    order_flow.delay_events, order_flow.delay_reasons, order_flow.customer_health
TO order_flow_reader;

GRANT EXECUTE ON FUNCTION order_flow.kpi(timestamptz, timestamptz),
    order_flow.top_delay_reasons(text, text, integer[], integer), order_flow.metrics_lag()
TO order_flow_reader;

/*
 * What the views read of a Citus cluster's distributed tables: called by
 * whoever reads the views, they answer only a caller who may read them.
 */
GRANT EXECUTE ON FUNCTION _order_flow._citus_log(), _order_flow._citus_heads(), _order_flow._citus_pending()
TO PUBLIC;

/* relays: members of order_flow_admin, or roles granted these two */
GRANT EXECUTE ON FUNCTION order_flow.outbox_claim(integer, interval), order_flow.outbox_done(bigint[])
TO order_flow_admin;

/* monitoring: pg_monitor reads the schedulers' state and the health view */
GRANT EXECUTE ON FUNCTION order_flow.worker_status(), order_flow.metrics_lag() TO pg_monitor;

GRANT SELECT ON order_flow.monitor TO pg_monitor, order_flow_admin, order_flow_reader;

/* anyone may ask which versions run */
GRANT EXECUTE ON FUNCTION order_flow.version(), _order_flow._library_version() TO PUBLIC;
