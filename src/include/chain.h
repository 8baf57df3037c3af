/*-------------------------------------------------------------------------
 *
 * chain.h
 *	  The per-order audit chain on disk (see chain/chain.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDER_FLOW_CHAIN_H
#define ORDER_FLOW_CHAIN_H

#include "executor/execdesc.h"
#include "nodes/execnodes.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"

#include "order_flow.h"

/* columns of order_flow.audit_log the chain writes */
enum
{
	LOG_KEY, LOG_SEQ, LOG_ACTION, LOG_FROM, LOG_TO, LOG_ACTOR, LOG_DBUSER, LOG_OCCURRED,
	LOG_RECORDED, LOG_DETAILS, LOG_PREV, LOG_HASH,
	LOG_NCOLS
};

/* columns of order_flow.tracked_order the chain reads and writes */
enum
{
	HEAD_KEY, HEAD_TBL, HEAD_WORKFLOW, HEAD_STATE, HEAD_HELD_FROM, HEAD_ENTERED_AT,
	HEAD_LAST_SEQ, HEAD_LAST_HASH, HEAD_LAST_OCCURRED, HEAD_REMINDER_LEVEL, HEAD_STALE_AFTER,
	HEAD_CUSTOMER, HEAD_ATTRIBUTES, HEAD_SIGNED, HEAD_WAREHOUSE, HEAD_FINANCE, HEAD_SHIPPED,
	HEAD_CREATED,
	HEAD_NCOLS
};

/*
 * Where a chain is written on a Citus worker: the companion shards of the
 * order's shard (citus/shards.c), in the writer's order (audit_log,
 * tracked_order, notification, outbox), and the order's value of the
 * distribution column, written into their dist_key.
 */
typedef struct OfChainTargets
{
	Oid			rel[4];
	Oid			logical[4];		/* the companion tables the shards belong to */
	Datum		dist;
} OfChainTargets;

struct RelLayout;

typedef struct OfChainWriter
{
	struct RelLayout *lay[4];	/* column layouts: log, head, notification, outbox */
	Oid			relids[4];
	bool		has_dist;		/* companion shards: dist_key = dist */
	Datum		dist;
	Relation	log;
	Relation	head;
	EState	   *estate;
	ResultRelInfo *log_rri;
	ResultRelInfo *head_rri;
	EPQState	epq;
	TupleTableSlot *search_slot;
	TupleTableSlot *head_slot;	/* the locked head */
	TupleTableSlot *new_slot;
	TupleTableSlot *log_slot;
	/* the broadcast's tables, opened on the first notification */
	Relation	notif;
	Relation	outbox;
	ResultRelInfo *notif_rri;
	ResultRelInfo *outbox_rri;
	TupleTableSlot *notif_slot;
	TupleTableSlot *outbox_slot;
	/* the tables' column defaults, compiled on first use (log, head, notification, outbox) */
	ExprState **defaults[4];
} OfChainWriter;

/* a locked chain head, as read */
typedef struct OfChainHead
{
	bool		found;
	int64		last_seq;
	bytea	   *last_hash;		/* NULL: no event yet */
	char	   *held_from;
	TimestampTz last_occurred;	/* DT_NOBEGIN: none */
	char	   *tbl;
	char	   *state;			/* NULL: deleted (or a pseudo order) */
} OfChainHead;

/* what else a new event changes in its head */
typedef struct OfHeadChange
{
	bool		moves;			/* a transition: state and what goes with it */
	const char *held_from;
	Jsonb	   *attributes;		/* NULL: keep */
	const char *customer;
	const char *tbl;
	const char *workflow;
	bool		has_stale_after;
	TimestampTz stale_after;
	int			stamp_col;		/* HEAD_SIGNED..HEAD_SHIPPED, or -1 */
} OfHeadChange;

extern void of_chain_begin(OfChainWriter *w);
extern void of_chain_begin_at(OfChainWriter *w, const OfChainTargets *t);
extern void of_chain_end(OfChainWriter *w);
extern bool of_chain_lock_head(OfChainWriter *w, const char *key, OfChainHead *head);
extern void of_chain_link(OfEvent *ev, const OfChainHead *head, uint8 *hash);
extern int64 of_chain_append_event(OfChainWriter *w, const OfEvent *ev, Jsonb *details,
								   const uint8 *hash);
extern void of_chain_move_head(OfChainWriter *w, const OfEvent *ev, const uint8 *hash,
							   const OfHeadChange *chg);
extern void of_chain_create_head(OfChainWriter *w, const OfEvent *ev, const uint8 *hash,
								 const OfHeadChange *chg);
extern int64 of_chain_notification(OfChainWriter *w, const OfEvent *ev, const char *department,
								   TimestampTz deadline, Jsonb *payload);
extern void of_chain_outbox(OfChainWriter *w, const OfEvent *ev, int64 notification_id,
							Jsonb *payload);

#endif							/* ORDER_FLOW_CHAIN_H */
