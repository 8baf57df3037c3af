/*
 * src/sql/pre_install/status_ops.sql
 *
 * Applied once, by a fresh install (after pre_install/status.sql) and by
 * the 1.1 -> 1.2 update alike: the status type's comparison operators move
 * to pg_catalog, which every search_path includes, so a client without
 * order_flow on its search_path still compares status values by process
 * (never alphabetically, through the implicit cast to text) and its
 * equality filters use an index on the column.  They stay the same
 * operators: the operator classes and every index keep them.
 */
ALTER OPERATOR order_flow.= (order_flow.status, order_flow.status) SET SCHEMA pg_catalog;
ALTER OPERATOR order_flow.<> (order_flow.status, order_flow.status) SET SCHEMA pg_catalog;
ALTER OPERATOR order_flow.< (order_flow.status, order_flow.status) SET SCHEMA pg_catalog;
ALTER OPERATOR order_flow.<= (order_flow.status, order_flow.status) SET SCHEMA pg_catalog;
ALTER OPERATOR order_flow.> (order_flow.status, order_flow.status) SET SCHEMA pg_catalog;
ALTER OPERATOR order_flow.>= (order_flow.status, order_flow.status) SET SCHEMA pg_catalog;
