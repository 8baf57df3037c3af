/*
 * src/sql/pre_install/internal.sql
 *
 * The schema of the internal helpers (1.2): trigger and support functions,
 * the status type's I/O, comparison and cast functions, the aggregates'
 * state functions, the steps the public functions are made of.  Keeping
 * them out of schema order_flow makes \df order_flow.* the public API.
 * Two trigger functions stay in order_flow: _transition_trigger and
 * _refuse_truncate, which the triggers on users' own tables name (so a
 * dump of those tables names them too).  Its privileges and comment are
 * in privileges.sql and comments.sql; the 1.1 -> 1.2 update creates it
 * and moves the existing helpers in its .pre.sql.
 */
CREATE SCHEMA _order_flow;
