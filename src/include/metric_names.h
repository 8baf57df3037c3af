/*-------------------------------------------------------------------------
 *
 * metric_names.h
 *	  The business names the metrics depend on: the one list, shared by
 *	  the C fold (metrics/fold.c) and the SQL fold and views
 *	  (src/sql/metrics.sql).
 *
 * The metrics read the shipped b2b_order workflow's meaning from these
 * names: which states stamp an order (signed, shipped, delivered,
 * accepted), which mean rework, which recorded facts count (payments,
 * service requests, complaints), which attributes segment the reports.
 * Renaming one here renames it for both folds, so the rollup the
 * scheduler folds in SQL and the one a writing transaction folds in C
 * cannot disagree.
 *
 * make turns every line below of the form
 *     #define OF_<NAME>  "value"[, "value" ...]
 * into a substitution of @OF_<NAME>@ in the SQL sources by the same
 * values in SQL quotes ('value', 'value'); the build fails if a
 * placeholder is left unreplaced.  Keep each definition on one line.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDER_FLOW_METRIC_NAMES_H
#define ORDER_FLOW_METRIC_NAMES_H

/* states whose first entry the rollup stamps */
#define OF_STATE_SIGNED "contract_signed"
#define OF_STATE_SHIPPED "shipped"
#define OF_STATE_DELIVERED "delivered"
#define OF_STATE_ACCEPTED "accepted"
/* states that mean the delivery was not right the first time */
#define OF_REWORK_STATES "rework", "returned"
/* every state a metric reads a change into */
#define OF_METRIC_STATES "contract_signed", "shipped", "delivered", "accepted", "rework", "returned"
/* exception types that mean the same */
#define OF_REWORK_TYPES "rework", "return", "returned", "reshipment"

/* event actions */
#define OF_ACTION_PAYMENT "payment"
#define OF_ACTION_SERVICE_REQUEST "service_request"
#define OF_ACTION_COMPLAINT "complaint"
#define OF_ACTION_EXCEPTION "exception"
#define OF_ACTION_LOGISTICS "logistics"
/* actions a metric reads */
#define OF_METRIC_ACTIONS "created", "payment", "service_request", "complaint", "exception", "logistics"
/* actions that change nothing kpi() reads */
#define OF_NON_KPI_ACTIONS "payment", "service_request", "complaint", "note"

#endif							/* ORDER_FLOW_METRIC_NAMES_H */
