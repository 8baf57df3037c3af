/*-------------------------------------------------------------------------
 *
 * chain/chain.c
 *	  The per-order audit chain on disk: lock an order's chain head
 *	  (order_flow.tracked_order), append an event (order_flow.audit_log),
 *	  move the head; and the rows a move on a notifying edge writes beside
 *	  it (order_flow.notification, order_flow.outbox).  One implementation
 *	  for the transition trigger and _order_flow._append_event(s).
 *
 * Why not SPI: these three steps run for every status change of every
 * order.  Through SPI each is a statement -- executor start-up, a plan with
 * a ModifyTable node per table, projections -- and in the transition path
 * that start-up cost more than the writes.  Here the head is found and
 * locked through its primary key index (RelationFindReplTupleByIndex, the
 * routine logical replication applies rows with: FOR UPDATE semantics,
 * following a concurrent update to the newest version), and rows are
 * written with ExecSimpleRelationInsert/ExecSimpleRelationUpdate, which
 * check the tables' constraints, maintain every index (the event's unique
 * (order_key, seq) key included, so two appends can never share a sequence
 * number), fire the tables' triggers and keep the head's update HOT where
 * PostgreSQL can.  Column defaults of the log that the event does not set
 * (its id) are evaluated as an INSERT would.  The writes are WAL-logged and
 * replicated like any other.
 *
 * The notification and outbox rows take the same route, in the same
 * executor state: a quarter of the moves notify, and as one SQL statement
 * they cost a third of the trigger's time.  Their tables are opened only
 * when a move notifies.
 *
 * Column positions are looked up by name once per relation and kept until
 * the relation's relcache entry is invalidated (an ALTER TABLE by an
 * update script, DROP/CREATE EXTENSION).
 *
 * On a Citus worker the writer is pointed at other tables: the companion
 * shards beside the order's shard (of_chain_begin_at, citus/shards.c),
 * whose rows carry the order's distribution value in dist_key.  Their
 * layouts are kept per shard; the ids their shards have no default for
 * come from the defaults Citus keeps on their tables (a sequence with a
 * range per node).
 *
 * The caller runs as the extension owner (of_become_owner) for the
 * duration: the tables' triggers and defaults run with its rights.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "order_flow.h"
#include "compat.h"
#include "chain.h"

/* ---- column positions, per relation ---- */

static const char *const log_columns[LOG_NCOLS] = {
	"order_key", "seq", "action", "from_state", "to_state", "actor", "db_user",
	"occurred_at", "recorded_at", "details", "prev_hash", "hash"
};

/* what a notification and an outbox message are given (the rest: defaults) */
enum
{
	NOTIF_KEY, NOTIF_DEPARTMENT, NOTIF_LEVEL, NOTIF_DEADLINE, NOTIF_PAYLOAD, NOTIF_FROM, NOTIF_TO,
	NOTIF_SEQ,
	NOTIF_NCOLS
};
static const char *const notif_columns[NOTIF_NCOLS] = {
	"order_key", "department", "level", "deadline", "payload", "from_state", "to_state", "event_seq"
};

enum
{
	OUTBOX_KEY, OUTBOX_NOTIFICATION, OUTBOX_PAYLOAD, OUTBOX_KIND, OUTBOX_SEQ,
	OUTBOX_NCOLS
};
static const char *const outbox_columns[OUTBOX_NCOLS] = {
	"order_key", "notification_id", "payload", "kind", "event_seq"
};

static const char *const head_columns[HEAD_NCOLS] = {
	"order_key", "tbl", "workflow", "state", "held_from", "entered_at", "last_seq",
	"last_hash", "last_occurred_at", "reminder_level", "stale_after", "customer_key",
	"attributes", "contract_signed_at", "warehouse_confirmed_at", "finance_approved_at",
	"shipped_at", "created_at"
};

typedef struct RelLayout
{
	int			writer_slot;	/* its entry in OfChainWriter.defaults */
	bool		valid;			/* the column positions below are the relation's */
	bool		relid_known;	/* relid is the table's (looked up by name) */
	Oid			relid;
	Oid			pkey;			/* the head's primary key index */
	AttrNumber	att[HEAD_NCOLS];	/* >= LOG_NCOLS */
	AttrNumber	dist_att;		/* a Citus companion's dist_key column (else 0) */
	Oid			logical;		/* a companion shard's table: the defaults Citus keeps there */
	int			ndefaults;		/* log columns the event leaves to their default */
	AttrNumber	default_att[8];
	Expr	   *default_expr[8];
	MemoryContext cxt;
} RelLayout;

static RelLayout log_layout = {.writer_slot = 0};
static RelLayout head_layout = {.writer_slot = 1};
static RelLayout notif_layout = {.writer_slot = 2};
static RelLayout outbox_layout = {.writer_slot = 3};
static bool callback_registered = false;

/* the layouts of Citus companion shards (citus/shards.c), by relation OID */
typedef struct ShardLayout
{
	Oid			relid;			/* hash key */
	RelLayout	l;
} ShardLayout;
static HTAB *shard_layouts = NULL;

static void
layout_invalidate(Datum arg, Oid relid)
{
	RelLayout  *all[] = {&log_layout, &head_layout, &notif_layout, &outbox_layout};

	for (int i = 0; i < lengthof(all); i++)
		if (relid == InvalidOid || relid == all[i]->relid)
			all[i]->valid = all[i]->relid_known = false;
	if (shard_layouts != NULL)
	{
		HASH_SEQ_STATUS seq;
		ShardLayout *sl;

		hash_seq_init(&seq, shard_layouts);
		while ((sl = hash_seq_search(&seq)) != NULL)
			if (relid == InvalidOid || relid == sl->relid)
				sl->l.valid = false;
	}
}

/* shard_layout: the (possibly not yet valid) layout slot of companion shard relid */
static RelLayout *
shard_layout(Oid relid, Oid logical, int writer_slot)
{
	ShardLayout *sl;
	bool		found;

	if (shard_layouts == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ShardLayout);
		ctl.hcxt = CacheMemoryContext;
		shard_layouts = hash_create("order_flow companion shard layouts", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(layout_invalidate, (Datum) 0);
		callback_registered = true;
	}
	sl = hash_search(shard_layouts, &relid, HASH_ENTER, &found);
	if (!found)
	{
		memset(&sl->l, 0, sizeof(RelLayout));
		sl->l.relid = relid;
	}
	sl->l.writer_slot = writer_slot;
	sl->l.logical = logical;
	return &sl->l;
}

/*
 * extension_relid: the OID of the extension's table name, as l last knew it
 * (every transition opens both tables: no catalogue lookup while the layout
 * is valid; a DROP/CREATE EXTENSION invalidates it with the old relation).
 */
static Oid
extension_relid(RelLayout *l, const char *name)
{
	Oid			nsp;
	Oid			relid;

	if (l->relid_known)
		return l->relid;
	nsp = get_namespace_oid(OF_SCHEMA, false);
	relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation %s.%s does not exist", OF_SCHEMA, name),
				 errhint("Run ALTER EXTENSION order_flow UPDATE.")));
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(layout_invalidate, (Datum) 0);
		callback_registered = true;
	}
	l->valid = l->valid && l->relid == relid;
	l->relid = relid;
	l->relid_known = true;
	return relid;
}

/*
 * layout: the column positions of rel (already open), for the columns
 * named; for the log, the defaults of the columns the event does not set.
 * The names from nrequired on are optional: columns a later version added,
 * which a database still at an earlier version lacks (position 0).
 */
static void
layout(RelLayout *l, Relation rel, const char *const *names, int n, int nrequired, bool defaults)
{
	TupleDesc	desc = RelationGetDescr(rel);
	MemoryContext old;

	if (l->valid && l->relid == RelationGetRelid(rel))
		return;
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(layout_invalidate, (Datum) 0);
		callback_registered = true;
	}
	if (l->cxt == NULL)
		l->cxt = AllocSetContextCreate(CacheMemoryContext, "order_flow chain layout",
									   ALLOCSET_SMALL_SIZES);
	MemoryContextReset(l->cxt);
	l->relid = RelationGetRelid(rel);
	for (int i = 0; i < n; i++)
	{
		int			a;

		for (a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), names[i]) == 0)
				break;
		}
		if (a == desc->natts && i >= nrequired)
		{
			l->att[i] = InvalidAttrNumber;
			continue;
		}
		if (a == desc->natts)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of %s does not exist", names[i], RelationGetRelationName(rel)),
					 errhint("Run ALTER EXTENSION order_flow UPDATE.")));
		l->att[i] = a + 1;
	}
	l->dist_att = InvalidAttrNumber;
	for (int a = 0; a < desc->natts; a++)
		if (!TupleDescAttr(desc, a)->attisdropped &&
			strcmp(NameStr(TupleDescAttr(desc, a)->attname), OF_DIST_COLUMN) == 0)
			l->dist_att = a + 1;
	l->ndefaults = 0;
	if (defaults)
	{
		old = MemoryContextSwitchTo(l->cxt);
		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);
			bool		named = false;
			Node	   *def;

			if (att->attisdropped)
				continue;
			for (int i = 0; i < n; i++)
				named |= l->att[i] == a + 1;
			named |= l->dist_att == a + 1;
			if (named)
				continue;
			def = build_column_default(rel, a + 1);
			/* a shard has no sequence default (its id): Citus keeps it on the table */
			if (def == NULL && OidIsValid(l->logical))
			{
				Relation	lr = relation_open(l->logical, AccessShareLock);
				int			la = attnameAttNum(lr, NameStr(att->attname), false);

				if (la > 0)
					def = build_column_default(lr, la);
				relation_close(lr, AccessShareLock);
			}
			if (def == NULL)
				continue;
			if (l->ndefaults == lengthof(l->default_att))
				elog(ERROR, "too many defaulted columns in %s", RelationGetRelationName(rel));
			l->default_att[l->ndefaults] = a + 1;
			l->default_expr[l->ndefaults] = expression_planner((Expr *) def);
			l->ndefaults++;
		}
		MemoryContextSwitchTo(old);
	}
	l->pkey = of_primary_key_index(rel);
	l->valid = l->relid_known = true;
}

/* ---- the writer ---- */

static ResultRelInfo *
result_rel(EState *estate, Relation rel, Index rti)
{
	ResultRelInfo *rri = makeNode(ResultRelInfo);

	InitResultRelInfo(rri, rel, rti, NULL, 0);
	ExecOpenIndices(rri, false);
	return rri;
}

/*
 * of_chain_begin: open the log and the heads for writing, with an executor
 * state the writes of this call share.  Ends with of_chain_end().
 */
void
of_chain_begin(OfChainWriter *w)
{
	of_chain_begin_at(w, NULL);
}

/*
 * of_chain_begin_at: the same, writing to the tables t names (the Citus
 * companion shards co-located with the order's shard, citus/shards.c) with
 * t->dist in their dist_key column; NULL: the extension's own tables.
 */
void
of_chain_begin_at(OfChainWriter *w, const OfChainTargets *t)
{
	const char *names[4] = {"audit_log", "tracked_order", "notification", "outbox"};
	RelLayout  *statics[4] = {&log_layout, &head_layout, &notif_layout, &outbox_layout};
	List	   *rtable = NIL;

	memset(w, 0, sizeof(*w));
	for (int i = 0; i < 4; i++)
	{
		w->lay[i] = t ? shard_layout(t->rel[i], t->logical[i], i) : statics[i];
		w->relids[i] = t ? t->rel[i] : extension_relid(statics[i], names[i]);
	}
	if (t)
	{
		w->has_dist = true;
		w->dist = t->dist;
	}
	w->log = table_open(w->relids[0], RowExclusiveLock);
	w->head = table_open(w->relids[1], RowExclusiveLock);
	layout(w->lay[0], w->log, log_columns, LOG_NCOLS, LOG_NCOLS, true);
	layout(w->lay[1], w->head, head_columns, HEAD_NCOLS, HEAD_NCOLS, true);
	if (!OidIsValid(w->lay[1]->pkey))
		elog(ERROR, "%s has no primary key", RelationGetRelationName(w->head));

	/* what this command wrote before (an earlier event of the same statement) is seen */
	CommandCounterIncrement();
	w->estate = CreateExecutorState();
	/* range table entries 1..4; the broadcast's two are opened when a move notifies */
	for (int i = 0; i < 4; i++)
	{
		RangeTblEntry *rte = makeNode(RangeTblEntry);

		rte->rtekind = RTE_RELATION;
		rte->relid = w->relids[i];
		rte->relkind = RELKIND_RELATION;
		rte->rellockmode = RowExclusiveLock;
		rtable = lappend(rtable, rte);
	}
	of_init_range_table(w->estate, rtable);
	w->estate->es_snapshot = GetActiveSnapshot();
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->log_rri = result_rel(w->estate, w->log, 1);
	w->head_rri = result_rel(w->estate, w->head, 2);
	of_epq_init(&w->epq, w->estate);
	w->head_slot = table_slot_create(w->head, &w->estate->es_tupleTable);
	w->search_slot = table_slot_create(w->head, &w->estate->es_tupleTable);
	w->new_slot = table_slot_create(w->head, &w->estate->es_tupleTable);
	w->log_slot = table_slot_create(w->log, &w->estate->es_tupleTable);
	AfterTriggerBeginQuery();
}

/* open_broadcast: the notification and outbox tables, on a writer's first notification */
static void
open_broadcast(OfChainWriter *w)
{
	if (w->notif != NULL)
		return;
	w->notif = table_open(w->relids[2], RowExclusiveLock);
	w->outbox = table_open(w->relids[3], RowExclusiveLock);
	layout(w->lay[2], w->notif, notif_columns, NOTIF_NCOLS, NOTIF_NCOLS, true);
	/* kind and event_seq are 1.2's: a 1.0 or 1.1 database has neither */
	layout(w->lay[3], w->outbox, outbox_columns, OUTBOX_NCOLS, OUTBOX_KIND, true);
	w->notif_rri = result_rel(w->estate, w->notif, 3);
	w->outbox_rri = result_rel(w->estate, w->outbox, 4);
	w->notif_slot = table_slot_create(w->notif, &w->estate->es_tupleTable);
	w->outbox_slot = table_slot_create(w->outbox, &w->estate->es_tupleTable);
}

/* set_dist: a companion row's distribution value (nothing for the extension's tables) */
static void
set_dist(OfChainWriter *w, RelLayout *l, TupleTableSlot *slot)
{
	if (w->has_dist && l->dist_att != InvalidAttrNumber)
	{
		slot->tts_values[l->dist_att - 1] = w->dist;
		slot->tts_isnull[l->dist_att - 1] = false;
	}
}

void
of_chain_end(OfChainWriter *w)
{
	AfterTriggerEndQuery(w->estate);
	/* the relations the tables' AFTER triggers were fired for (before 1.2: the log's metrics trigger) */
	ExecCloseResultRelations(w->estate);
	EvalPlanQualEnd(&w->epq);
	ExecCloseIndices(w->log_rri);
	ExecCloseIndices(w->head_rri);
	if (w->notif != NULL)
	{
		ExecCloseIndices(w->notif_rri);
		ExecCloseIndices(w->outbox_rri);
	}
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	FreeExecutorState(w->estate);
	table_close(w->log, NoLock);
	table_close(w->head, NoLock);
	if (w->notif != NULL)
	{
		table_close(w->notif, NoLock);
		table_close(w->outbox, NoLock);
	}
}

/*
 * fill_defaults: the columns of l left to their defaults, as an INSERT
 * would.  The expressions are compiled once per writer (a batch writes
 * many rows of one table through it), in its executor state.
 */
static void
fill_defaults(OfChainWriter *w, RelLayout *l, TupleTableSlot *slot)
{
	ExprState **states = w->defaults[l->writer_slot];
	ExprContext *econtext = GetPerTupleExprContext(w->estate);

	if (states == NULL && l->ndefaults > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		states = palloc(sizeof(ExprState *) * l->ndefaults);
		for (int i = 0; i < l->ndefaults; i++)
			states[i] = ExecInitExpr(l->default_expr[i], NULL);
		MemoryContextSwitchTo(old);
		w->defaults[l->writer_slot] = states;
	}
	for (int i = 0; i < l->ndefaults; i++)
	{
		AttrNumber	a = l->default_att[i];

		slot->tts_values[a - 1] = ExecEvalExprSwitchContext(states[i], econtext, &slot->tts_isnull[a - 1]);
	}
}

/* empty_slot: slot cleared, every column NULL, ready to be filled */
static void
empty_slot(TupleTableSlot *slot)
{
	ExecClearTuple(slot);
	for (int a = 0; a < slot->tts_tupleDescriptor->natts; a++)
		slot->tts_isnull[a] = true;
}

/* defaulted_id: the id column's value, when fill_defaults gave it one (else 0) */
static int64
defaulted_id(RelLayout *l, TupleTableSlot *slot)
{
	for (int i = 0; i < l->ndefaults; i++)
	{
		AttrNumber	a = l->default_att[i];

		if (strcmp(NameStr(TupleDescAttr(slot->tts_tupleDescriptor, a - 1)->attname), "id") == 0 &&
			!slot->tts_isnull[a - 1])
			return DatumGetInt64(slot->tts_values[a - 1]);
	}
	return 0;
}

static char *
slot_text(TupleTableSlot *slot, AttrNumber att)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, att, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * of_chain_lock_head: find the chain head of key and lock it FOR UPDATE
 * (waiting for a transaction that holds it).  Fills head; false when the
 * order has no head.
 */
bool
of_chain_lock_head(OfChainWriter *w, const char *key, OfChainHead *head)
{
	bool		isnull;
	Datum		d;

	memset(head, 0, sizeof(*head));
	ExecClearTuple(w->search_slot);
	for (int a = 0; a < w->search_slot->tts_tupleDescriptor->natts; a++)
		w->search_slot->tts_isnull[a] = true;
	w->search_slot->tts_values[w->lay[1]->att[HEAD_KEY] - 1] = CStringGetTextDatum(key);
	w->search_slot->tts_isnull[w->lay[1]->att[HEAD_KEY] - 1] = false;
	set_dist(w, w->lay[1], w->search_slot);
	ExecStoreVirtualTuple(w->search_slot);
	if (!RelationFindReplTupleByIndex(w->head, w->lay[1]->pkey, LockTupleExclusive,
									  w->search_slot, w->head_slot))
		return false;

	/*
	 * The newest version is locked.  A REPEATABLE READ or SERIALIZABLE
	 * transaction that could not see it (another transaction moved the
	 * order after its snapshot) fails as SELECT ... FOR UPDATE would.
	 */
	if (IsolationUsesXactSnapshot() &&
		!table_tuple_satisfies_snapshot(w->head, w->head_slot, GetTransactionSnapshot()))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update")));
	head->found = true;
	d = slot_getattr(w->head_slot, w->lay[1]->att[HEAD_LAST_SEQ], &isnull);
	head->last_seq = isnull ? 0 : DatumGetInt64(d);
	d = slot_getattr(w->head_slot, w->lay[1]->att[HEAD_LAST_HASH], &isnull);
	head->last_hash = isnull ? NULL : DatumGetByteaPCopy(d);
	head->held_from = slot_text(w->head_slot, w->lay[1]->att[HEAD_HELD_FROM]);
	d = slot_getattr(w->head_slot, w->lay[1]->att[HEAD_LAST_OCCURRED], &isnull);
	head->last_occurred = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
	head->tbl = slot_text(w->head_slot, w->lay[1]->att[HEAD_TBL]);
	head->state = slot_text(w->head_slot, w->lay[1]->att[HEAD_STATE]);
	return true;
}

/*
 * of_chain_link: ev becomes the next event of the chain ending at head:
 * its sequence number and previous hash, and its own hash into hash.
 */
void
of_chain_link(OfEvent *ev, const OfChainHead *head, uint8 *hash)
{
	ev->seq = head->found ? head->last_seq + 1 : 1;
	ev->prev_hash = head->last_hash ? (uint8 *) VARDATA_ANY(head->last_hash) : NULL;
	ev->prev_hash_len = head->last_hash ? VARSIZE_ANY_EXHDR(head->last_hash) : 0;
	of_event_hash(ev, hash);
}

/*
 * of_chain_append_event: write ev (hashed into hash, its details as jsonb)
 * to the log; returns its id.
 */
int64
of_chain_append_event(OfChainWriter *w, const OfEvent *ev, Jsonb *details, const uint8 *hash)
{
	TupleTableSlot *slot = w->log_slot;
	bytea	   *h = of_hash_bytea(hash);
	Datum	   *v;
	bool	   *n;
	int64		id = 0;

	empty_slot(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
#define SETCOL(col, datum) (v[w->lay[0]->att[col] - 1] = (datum), n[w->lay[0]->att[col] - 1] = false)
	SETCOL(LOG_KEY, CStringGetTextDatum(ev->order_key));
	SETCOL(LOG_SEQ, Int64GetDatum(ev->seq));
	SETCOL(LOG_ACTION, CStringGetTextDatum(ev->action));
	if (ev->from_state)
		SETCOL(LOG_FROM, CStringGetTextDatum(ev->from_state));
	if (ev->to_state)
		SETCOL(LOG_TO, CStringGetTextDatum(ev->to_state));
	SETCOL(LOG_ACTOR, CStringGetTextDatum(ev->actor));
	SETCOL(LOG_DBUSER, CStringGetTextDatum(ev->db_user));
	SETCOL(LOG_OCCURRED, TimestampTzGetDatum(ev->occurred_at));
	SETCOL(LOG_RECORDED, TimestampTzGetDatum(ev->recorded_at));
	SETCOL(LOG_DETAILS, JsonbPGetDatum(details));
	if (ev->prev_hash)
	{
		bytea	   *p = palloc(VARHDRSZ + ev->prev_hash_len);

		SET_VARSIZE(p, VARHDRSZ + ev->prev_hash_len);
		memcpy(VARDATA(p), ev->prev_hash, ev->prev_hash_len);
		SETCOL(LOG_PREV, PointerGetDatum(p));
	}
	SETCOL(LOG_HASH, PointerGetDatum(h));
#undef SETCOL
	/* what the event leaves to the log's defaults (its id) */
	fill_defaults(w, w->lay[0], slot);
	set_dist(w, w->lay[0], slot);
	id = defaulted_id(w->lay[0], slot);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(w->log_rri, w->estate, slot);
	return id;
}

/*
 * of_chain_move_head: the head now ends at ev; chg says what else of the
 * order changes (the state and what goes with it, for a transition).
 */
void
of_chain_move_head(OfChainWriter *w, const OfEvent *ev, const uint8 *hash, const OfHeadChange *chg)
{
	TupleTableSlot *slot = w->new_slot;
	int			natts = slot->tts_tupleDescriptor->natts;
	bytea	   *h = of_hash_bytea(hash);
	Datum	   *v;
	bool	   *n;

	slot_getallattrs(w->head_slot);
	ExecClearTuple(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	memcpy(v, w->head_slot->tts_values, sizeof(Datum) * natts);
	memcpy(n, w->head_slot->tts_isnull, sizeof(bool) * natts);
#define SETCOL(col, datum) (v[w->lay[1]->att[col] - 1] = (datum), n[w->lay[1]->att[col] - 1] = false)
#define NULLCOL(col) (n[w->lay[1]->att[col] - 1] = true)
	SETCOL(HEAD_LAST_SEQ, Int64GetDatum(ev->seq));
	SETCOL(HEAD_LAST_HASH, PointerGetDatum(h));
	if (chg->moves)
	{
		SETCOL(HEAD_LAST_OCCURRED, TimestampTzGetDatum(ev->occurred_at));
		if (ev->to_state)
			SETCOL(HEAD_STATE, CStringGetTextDatum(ev->to_state));
		else
			NULLCOL(HEAD_STATE);
		SETCOL(HEAD_ENTERED_AT, TimestampTzGetDatum(ev->occurred_at));
		if (chg->held_from)
			SETCOL(HEAD_HELD_FROM, CStringGetTextDatum(chg->held_from));
		else
			NULLCOL(HEAD_HELD_FROM);
		if (chg->attributes)
			SETCOL(HEAD_ATTRIBUTES, JsonbPGetDatum(chg->attributes));
		if (chg->customer)
			SETCOL(HEAD_CUSTOMER, CStringGetTextDatum(chg->customer));
		else if (chg->attributes)
			NULLCOL(HEAD_CUSTOMER);
		if (chg->tbl)
			SETCOL(HEAD_TBL, CStringGetTextDatum(chg->tbl));
		if (chg->workflow)
			SETCOL(HEAD_WORKFLOW, CStringGetTextDatum(chg->workflow));
		SETCOL(HEAD_REMINDER_LEVEL, Int32GetDatum(0));
		if (chg->has_stale_after)
			SETCOL(HEAD_STALE_AFTER, TimestampTzGetDatum(chg->stale_after));
		else
			NULLCOL(HEAD_STALE_AFTER);
		/* a stamp keeps the first time its state was reached */
		if (chg->stamp_col >= 0 && n[w->lay[1]->att[chg->stamp_col] - 1])
			SETCOL(chg->stamp_col, TimestampTzGetDatum(ev->occurred_at));
	}
	else
	{
		/* an event that is not a move: the head's time only grows */
		bool		isnull = n[w->lay[1]->att[HEAD_LAST_OCCURRED] - 1];
		TimestampTz last = isnull ? 0 : DatumGetTimestampTz(v[w->lay[1]->att[HEAD_LAST_OCCURRED] - 1]);

		if (isnull || ev->occurred_at > last)
			SETCOL(HEAD_LAST_OCCURRED, TimestampTzGetDatum(ev->occurred_at));
	}
#undef SETCOL
#undef NULLCOL
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationUpdate(w->head_rri, w->estate, &w->epq, w->head_slot, slot);
}

/*
 * of_chain_create_head: the first event of a new order (ev, its 'created'
 * event, already appended) starts its head.
 */
void
of_chain_create_head(OfChainWriter *w, const OfEvent *ev, const uint8 *hash, const OfHeadChange *chg)
{
	TupleTableSlot *slot = w->new_slot;
	bytea	   *h = of_hash_bytea(hash);
	Datum	   *v;
	bool	   *n;

	empty_slot(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	fill_defaults(w, w->lay[1], slot);
#define SETCOL(col, datum) (v[w->lay[1]->att[col] - 1] = (datum), n[w->lay[1]->att[col] - 1] = false)
	SETCOL(HEAD_KEY, CStringGetTextDatum(ev->order_key));
	if (chg->tbl)
		SETCOL(HEAD_TBL, CStringGetTextDatum(chg->tbl));
	if (chg->workflow)
		SETCOL(HEAD_WORKFLOW, CStringGetTextDatum(chg->workflow));
	if (ev->to_state)
		SETCOL(HEAD_STATE, CStringGetTextDatum(ev->to_state));
	if (chg->held_from)
		SETCOL(HEAD_HELD_FROM, CStringGetTextDatum(chg->held_from));
	SETCOL(HEAD_ENTERED_AT, TimestampTzGetDatum(ev->occurred_at));
	SETCOL(HEAD_LAST_SEQ, Int64GetDatum(ev->seq));
	SETCOL(HEAD_LAST_HASH, PointerGetDatum(h));
	SETCOL(HEAD_LAST_OCCURRED, TimestampTzGetDatum(ev->occurred_at));
	SETCOL(HEAD_REMINDER_LEVEL, Int32GetDatum(0));
	if (chg->has_stale_after)
		SETCOL(HEAD_STALE_AFTER, TimestampTzGetDatum(chg->stale_after));
	if (chg->customer)
		SETCOL(HEAD_CUSTOMER, CStringGetTextDatum(chg->customer));
	if (chg->attributes)
		SETCOL(HEAD_ATTRIBUTES, JsonbPGetDatum(chg->attributes));
	if (chg->stamp_col >= 0)
		SETCOL(chg->stamp_col, TimestampTzGetDatum(ev->occurred_at));
	SETCOL(HEAD_CREATED, TimestampTzGetDatum(ev->occurred_at));
#undef SETCOL
	set_dist(w, w->lay[1], slot);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(w->head_rri, w->estate, slot);
}

/*
 * of_chain_notification: open a level-1 notification of department for the
 * move ev (its states and its place in the chain), due at deadline, with
 * payload; returns its id.
 */
int64
of_chain_notification(OfChainWriter *w, const OfEvent *ev, const char *department,
					  TimestampTz deadline, Jsonb *payload)
{
	TupleTableSlot *slot;
	Datum	   *v;
	bool	   *n;
	int64		id;

	open_broadcast(w);
	slot = w->notif_slot;
	empty_slot(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	fill_defaults(w, w->lay[2], slot);
	set_dist(w, w->lay[2], slot);
#define SETCOL(col, datum) (v[w->lay[2]->att[col] - 1] = (datum), n[w->lay[2]->att[col] - 1] = false)
	SETCOL(NOTIF_KEY, CStringGetTextDatum(ev->order_key));
	SETCOL(NOTIF_DEPARTMENT, CStringGetTextDatum(department));
	SETCOL(NOTIF_LEVEL, Int32GetDatum(1));
	SETCOL(NOTIF_DEADLINE, TimestampTzGetDatum(deadline));
	SETCOL(NOTIF_PAYLOAD, JsonbPGetDatum(payload));
	if (ev->from_state)
		SETCOL(NOTIF_FROM, CStringGetTextDatum(ev->from_state));
	if (ev->to_state)
		SETCOL(NOTIF_TO, CStringGetTextDatum(ev->to_state));
	SETCOL(NOTIF_SEQ, Int64GetDatum(ev->seq));
#undef SETCOL
	id = defaulted_id(w->lay[2], slot);
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(w->notif_rri, w->estate, slot);
	return id;
}

/*
 * of_chain_outbox: the outbox message of notification notification_id,
 * opened by the move ev (the message's place in the order's chain)
 */
void
of_chain_outbox(OfChainWriter *w, const OfEvent *ev, int64 notification_id, Jsonb *payload)
{
	TupleTableSlot *slot;
	Datum	   *v;
	bool	   *n;

	open_broadcast(w);
	slot = w->outbox_slot;
	empty_slot(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	fill_defaults(w, w->lay[3], slot);
	set_dist(w, w->lay[3], slot);
#define SETCOL(col, datum) (v[w->lay[3]->att[col] - 1] = (datum), n[w->lay[3]->att[col] - 1] = false)
	SETCOL(OUTBOX_KEY, CStringGetTextDatum(ev->order_key));
	SETCOL(OUTBOX_NOTIFICATION, Int64GetDatum(notification_id));
	SETCOL(OUTBOX_PAYLOAD, JsonbPGetDatum(payload));
	if (w->lay[3]->att[OUTBOX_KIND] != InvalidAttrNumber)
		SETCOL(OUTBOX_KIND, CStringGetTextDatum("ack_request"));
	if (w->lay[3]->att[OUTBOX_SEQ] != InvalidAttrNumber)
		SETCOL(OUTBOX_SEQ, Int64GetDatum(ev->seq));
#undef SETCOL
	ExecStoreVirtualTuple(slot);
	ExecSimpleRelationInsert(w->outbox_rri, w->estate, slot);
}
