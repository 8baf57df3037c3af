/*
 * src/sql/pre_install/privileges.sql
 *
 * Created once: the privileges on the schema, tables and sequences of the
 * subsystems above (an update does not restate them: a DBA's own grants
 * and revokes on tables survive updates).
 */

/* ------------------------------------------------------------------ */
/* Privileges: PUBLIC gets what it needs and nothing else.             */
/* ------------------------------------------------------------------ */
REVOKE ALL ON ALL TABLES IN SCHEMA order_flow FROM PUBLIC;

REVOKE ALL ON ALL SEQUENCES IN SCHEMA order_flow FROM PUBLIC;

GRANT USAGE ON SCHEMA order_flow TO PUBLIC;

GRANT SELECT ON order_flow.status_label, order_flow.workflow, order_flow.state,
    order_flow.transition_rule, order_flow.department, order_flow.calendar,
    order_flow.calendar_hours, order_flow.calendar_holiday
TO PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE ON order_flow.calendar, order_flow.calendar_hours,
    order_flow.calendar_holiday, order_flow.workflow, order_flow.department, order_flow.state,
    order_flow.transition_rule, order_flow.member, order_flow.escalation_policy,
    order_flow.reminder_policy, order_flow.managed_table
TO order_flow_admin;

GRANT SELECT, INSERT ON order_flow.status_label TO order_flow_admin;

GRANT SELECT ON order_flow.config_tombstone TO order_flow_admin;

GRANT SELECT, INSERT, UPDATE ON order_flow.tracked_order TO order_flow_admin;

GRANT SELECT ON order_flow.audit_log, order_flow.notification, order_flow.outbox,
    order_flow.refused_attempt TO order_flow_admin;

GRANT UPDATE (delivered_at, attempts) ON order_flow.outbox TO order_flow_admin;

GRANT SELECT, INSERT, UPDATE, DELETE ON order_flow.sku, order_flow.stock, order_flow.order_line,
    order_flow.package_preset, order_flow.freight_rule, order_flow.waybill_pool, order_flow.station_config
TO order_flow_admin;

GRANT SELECT ON order_flow.shipment, order_flow.station_event, order_flow.logistics_trace
TO order_flow_admin;

GRANT USAGE ON SEQUENCE order_flow.freight_rule_id_seq TO order_flow_admin;

/* The owner appends; nobody rewrites history. */
REVOKE UPDATE, DELETE, TRUNCATE ON order_flow.audit_log FROM CURRENT_USER;
