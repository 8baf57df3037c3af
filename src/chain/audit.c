/*-------------------------------------------------------------------------
 *
 * chain/audit.c
 *	  The tamper-evident audit log: event hashing, appending non-transition
 *	  events, verification, and the append-only guard.
 *
 * Each event carries the SHA-256 of the previous event of the same order,
 * so chains are per order: concurrent orders never contend, and chains
 * survive sharding by order key.  The head of each chain (last sequence
 * number and hash) lives in order_flow.tracked_order; appending locks that
 * row, which serialises appends to one order.  chain/chain.c writes both, for the
 * transition trigger and for _append_event and _append_events (a batch:
 * one writer, heads locked in key order) here alike.
 *
 * The hash covers every column a reader relies on, each field length-
 * prefixed so no two events encode alike: previous hash, order key,
 * sequence, action, states, actor, database user, both timestamps (as
 * internal microseconds) and the details in jsonb's canonical text form.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "order_flow.h"
#include "chain.h"

static void
hash_bytes(pg_cryptohash_ctx *ctx, const void *data, int32 len)
{
	uint32		be = pg_hton32((uint32) len);

	if (pg_cryptohash_update(ctx, (const uint8 *) &be, sizeof(be)) < 0 ||
		(len > 0 && pg_cryptohash_update(ctx, data, len) < 0))
		elog(ERROR, "could not update SHA-256 context");
}

static void
hash_str(pg_cryptohash_ctx *ctx, const char *s)
{
	if (s == NULL)
		hash_bytes(ctx, NULL, -1);
	else
		hash_bytes(ctx, s, strlen(s));
}

static void
hash_int64(pg_cryptohash_ctx *ctx, int64 v)
{
	uint64		be = pg_hton64((uint64) v);

	hash_bytes(ctx, &be, sizeof(be));
}

/*
 * of_event_hash: SHA-256 of one event, chained to ev->prev_hash.
 */
void
of_event_hash(const OfEvent *ev, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not initialise SHA-256 context");
	hash_bytes(ctx, "order_flow/1", 12);
	if (ev->prev_hash)
		hash_bytes(ctx, ev->prev_hash, ev->prev_hash_len);
	else
		hash_bytes(ctx, NULL, -1);
	hash_str(ctx, ev->order_key);
	hash_int64(ctx, ev->seq);
	hash_str(ctx, ev->action);
	hash_str(ctx, ev->from_state);
	hash_str(ctx, ev->to_state);
	hash_str(ctx, ev->actor);
	hash_str(ctx, ev->db_user);
	hash_int64(ctx, ev->occurred_at);
	hash_int64(ctx, ev->recorded_at);
	hash_str(ctx, ev->details);
	if (pg_cryptohash_final(ctx, out, OF_HASH_LEN) < 0)
		elog(ERROR, "could not finalise SHA-256 context");
	pg_cryptohash_free(ctx);
}

/* of_hash_bytea: a hash as the bytea the tables hold */
bytea *
of_hash_bytea(const uint8 *h)
{
	bytea	   *b = palloc(VARHDRSZ + OF_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + OF_HASH_LEN);
	memcpy(VARDATA(b), h, OF_HASH_LEN);
	return b;
}

static char *
arg_text(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

PG_FUNCTION_INFO_V1(order_flow_event_hash);

/*
 * order_flow.event_hash(...): the hash of one event, for independent
 * verification from SQL.
 */
Datum
order_flow_event_hash(PG_FUNCTION_ARGS)
{
	OfEvent		ev;
	uint8		h[OF_HASH_LEN];
	bytea	   *prev = PG_ARGISNULL(0) ? NULL : PG_GETARG_BYTEA_PP(0);

	if (PG_ARGISNULL(2) || PG_ARGISNULL(8) || PG_ARGISNULL(9))
		PG_RETURN_NULL();
	ev.prev_hash = prev ? (uint8 *) VARDATA_ANY(prev) : NULL;
	ev.prev_hash_len = prev ? VARSIZE_ANY_EXHDR(prev) : 0;
	ev.order_key = arg_text(fcinfo, 1);
	ev.seq = PG_GETARG_INT64(2);
	ev.action = arg_text(fcinfo, 3);
	ev.from_state = arg_text(fcinfo, 4);
	ev.to_state = arg_text(fcinfo, 5);
	ev.actor = arg_text(fcinfo, 6);
	ev.db_user = arg_text(fcinfo, 7);
	ev.occurred_at = PG_GETARG_TIMESTAMPTZ(8);
	ev.recorded_at = PG_GETARG_TIMESTAMPTZ(9);
	ev.details = PG_ARGISNULL(10) ? NULL :
		JsonbToCString(NULL, &PG_GETARG_JSONB_P(10)->root, VARSIZE(PG_GETARG_JSONB_P(10)));
	of_event_hash(&ev, h);
	PG_RETURN_BYTEA_P(of_hash_bytea(h));
}

/*
 * _order_flow._append_event(order_key, action, from, to, details, occurred_at)
 *
 * Appends one non-transition event (a business fact, a config change, an
 * acknowledgement, an escalation) to the order's chain and returns its
 * audit id.  Pseudo orders ('order_flow:...') get their chain head created
 * on first use.  Not granted to PUBLIC: only the extension's own SECURITY
 * DEFINER functions call it.
 */
PG_FUNCTION_INFO_V1(order_flow_append_event);
PG_FUNCTION_INFO_V1(order_flow_append_events);

static SPIPlanPtr head_plan = NULL;

/*
 * start_config_chain: the extension's own chains (configuration, keys
 * 'order_flow:...') start on first use; an order's chain starts with the
 * order.  Runs as the extension's owner, before the chain writer opens.
 */
static void
start_config_chain(const char *key)
{
	Oid			t[1] = {TEXTOID};
	Datum		values[1];

	if (strncmp(key, "order_flow:", 11) != 0)
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (head_plan == NULL)
	{
		head_plan = SPI_prepare("INSERT INTO order_flow.tracked_order (order_key) VALUES ($1)"
								" ON CONFLICT (order_key) DO NOTHING", 1, t);
		if (head_plan == NULL || SPI_keepplan(head_plan))
			elog(ERROR, "could not prepare chain head plan");
	}
	values[0] = CStringGetTextDatum(key);
	if (SPI_execute_plan(head_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not create chain head");
	SPI_finish();
}

/*
 * append_to_chain: append the n events evs (all of one order, in this
 * order; details[i] is the jsonb of evs[i].details) to that order's chain:
 * the head is locked once, each event linked to the one before, and the
 * head moved once, to the last.  Returns the first event's id.
 */
static int64
append_to_chain(OfChainWriter *w, OfEvent *evs, Jsonb **details, int n)
{
	OfChainHead head;
	OfHeadChange chg;
	OfEvent		last;
	uint8		h[OF_HASH_LEN];
	int64		first_id = 0;

	if (!of_chain_lock_head(w, evs[0].order_key, &head))
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("order %s is not tracked", evs[0].order_key)));
	last = evs[0];
	for (int i = 0; i < n; i++)
	{
		int64		id;

		of_chain_link(&evs[i], &head, h);
		id = of_chain_append_event(w, &evs[i], details[i], h);
		if (i == 0)
			first_id = id;
		/* the next event links to this one */
		head.found = true;
		head.last_seq = evs[i].seq;
		head.last_hash = of_hash_bytea(h);
		if (evs[i].occurred_at > last.occurred_at || i == 0)
			last.occurred_at = evs[i].occurred_at;
		last.seq = evs[i].seq;
	}
	memset(&chg, 0, sizeof(chg));
	chg.stamp_col = -1;
	of_chain_move_head(w, &last, h, &chg);
	return first_id;
}

/* init_event: an event of key by this session's actor, recorded (and occurring) at now */
static void
init_event(OfEvent *ev, const char *key, const char *action, TimestampTz now)
{
	memset(ev, 0, sizeof(*ev));
	ev->order_key = key;
	ev->action = action;
	ev->actor = of_current_actor();
	ev->db_user = of_db_user();
	ev->recorded_at = now;
	ev->occurred_at = now;
}

static void
check_finite(TimestampTz t)
{
	if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("occurred_at must be a finite time"),
				 err_generic_string(PG_DIAG_CONSTRAINT_NAME, "order_flow_business_time")));
}

static Jsonb *
empty_object(void)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
}

/*
 * citus_order: on a Citus coordinator (schema order_flow_citus exists), is
 * key an order of a distributed table rather than of this node's tables?
 * Then _citus_append_event() appends its event beside its shard.
 */
static bool
citus_order(const char *key)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		local;

	if (!OidIsValid(get_namespace_oid(OF_CITUS_SCHEMA, true)) || strncmp(key, "order_flow:", 11) == 0)
		return false;
	values[0] = CStringGetTextDatum(key);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT 1 FROM order_flow.tracked_order WHERE order_key OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not look for order %s", key);
	local = SPI_processed > 0;
	SPI_finish();
	return !local;
}

static Datum
citus_append(FunctionCallInfo fcinfo)
{
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TIMESTAMPTZOID};
	Datum		values[6];
	char		nulls[6];
	bool		isnull;
	Datum		id;

	for (int i = 0; i < 6; i++)
	{
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT " OF_INTERNAL_SCHEMA "._citus_append_event($1, $2, $3, $4, $5, $6)",
							  6, types, values, nulls, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not append to the chain of a distributed table's order");
	id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_finish();
	return id;
}

/*
 * _order_flow._append_event(order_key, action, from_state, to_state,
 * details, occurred_at): append a non-transition event (a fact, a
 * notification answer, a configuration change...) to the order's chain
 * through chain/chain.c, as the transition trigger appends its events;
 * returns its id.  Called by the extension's own SECURITY DEFINER functions
 * only (PUBLIC has no EXECUTE on it).
 */
Datum
order_flow_append_event(PG_FUNCTION_ARGS)
{
	OfEvent		ev;
	Jsonb	   *details;
	int64		id;
	OfUserSave	save;
	OfChainWriter w;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("order key and action must not be null")));
	init_event(&ev, arg_text(fcinfo, 0), arg_text(fcinfo, 1), GetCurrentTimestamp());
	ev.from_state = arg_text(fcinfo, 2);
	ev.to_state = arg_text(fcinfo, 3);
	if (!PG_ARGISNULL(5))
		ev.occurred_at = PG_GETARG_TIMESTAMPTZ(5);
	check_finite(ev.occurred_at);
	details = PG_ARGISNULL(4) ? empty_object() : PG_GETARG_JSONB_P(4);
	ev.details = JsonbToCString(NULL, &details->root, VARSIZE(details));
	if (citus_order(ev.order_key))
		PG_RETURN_DATUM(citus_append(fcinfo));

	of_become_owner(&save);
	start_config_chain(ev.order_key);
	of_chain_begin(&w);
	id = append_to_chain(&w, &ev, &details, 1);
	of_chain_end(&w);
	of_restore_user(&save);

	of_metrics_after_append(ev.order_key, ev.seq);
	PG_RETURN_INT64(id);
}

/* key_order: events sorted by order key, then by their place in the call */
typedef struct KeyedEvent
{
	const char *key;
	int			pos;
} KeyedEvent;

static int
key_order(const void *a, const void *b)
{
	const KeyedEvent *x = a;
	const KeyedEvent *y = b;
	int			c = strcmp(x->key, y->key);

	return c != 0 ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/*
 * _order_flow._append_events(action, order_keys text[], details jsonb[],
 * occurred_at DEFAULT NULL): the same as _append_event(key, action, NULL,
 * NULL, details[i], occurred_at) for every i, in one pass: the log and the
 * heads are opened once, the heads locked in key order (as every batch of
 * the extension locks them, so two batches cannot deadlock), and each
 * order's head moved once however many of its events the call holds.  The
 * events of one order are chained in the order the arrays give them.  What
 * the scheduler's escalation batch appends: one call per batch instead of
 * one per escalation.  Returns one row per event: its place in the arrays
 * (from 1), its order and its sequence number in that order's chain.
 */
Datum
order_flow_append_events(PG_FUNCTION_ARGS)
{
	Datum	   *keys;
	bool	   *key_nulls;
	Datum	   *dets;
	bool	   *det_nulls;
	int			nkeys;
	int			ndets;
	char	   *action;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz at;
	KeyedEvent *order;
	OfUserSave	save;
	OfChainWriter w;
	MemoryContext per_order;
	MemoryContext oldcxt;
	char	  **last_keys;		/* each order once, with its last event's seq */
	int64	   *last_seqs;
	int			norders = 0;
	int			start;
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("action, order keys and details must not be null")));
	InitMaterializedSRF(fcinfo, 0);
	action = arg_text(fcinfo, 0);
	at = PG_ARGISNULL(3) ? now : PG_GETARG_TIMESTAMPTZ(3);
	check_finite(at);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT,
					  &keys, &key_nulls, &nkeys);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(2), JSONBOID, -1, false, TYPALIGN_INT,
					  &dets, &det_nulls, &ndets);
	if (nkeys != ndets)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%d order keys but %d details", nkeys, ndets)));
	order = palloc(sizeof(KeyedEvent) * Max(nkeys, 1));
	for (int i = 0; i < nkeys; i++)
	{
		if (key_nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("order key %d is null", i + 1)));
		order[i].key = TextDatumGetCString(keys[i]);
		order[i].pos = i;
	}
	qsort(order, nkeys, sizeof(KeyedEvent), key_order);
	last_keys = palloc(sizeof(char *) * Max(nkeys, 1));
	last_seqs = palloc(sizeof(int64) * Max(nkeys, 1));

	of_become_owner(&save);
	for (int i = 0; i < nkeys; i++)
		if (i == 0 || strcmp(order[i].key, order[i - 1].key) != 0)
			start_config_chain(order[i].key);
	of_chain_begin(&w);
	per_order = AllocSetContextCreate(CurrentMemoryContext, "order_flow batch append",
									  ALLOCSET_DEFAULT_SIZES);
	for (start = 0; start < nkeys;)
	{
		int			end = start + 1;
		OfEvent    *evs;
		Jsonb	  **details;

		while (end < nkeys && strcmp(order[end].key, order[start].key) == 0)
			end++;
		oldcxt = MemoryContextSwitchTo(per_order);
		evs = palloc(sizeof(OfEvent) * (end - start));
		details = palloc(sizeof(Jsonb *) * (end - start));
		for (int i = start; i < end; i++)
		{
			int			p = order[i].pos;
			Jsonb	   *d = det_nulls[p] ? empty_object() : DatumGetJsonbP(dets[p]);

			init_event(&evs[i - start], order[i].key, action, now);
			evs[i - start].occurred_at = at;
			evs[i - start].details = JsonbToCString(NULL, &d->root, VARSIZE(d));
			details[i - start] = d;
		}
		append_to_chain(&w, evs, details, end - start);
		MemoryContextSwitchTo(oldcxt);
		for (int i = start; i < end; i++)
		{
			Datum		v[3];
			bool		n[3] = {false, false, false};

			v[0] = Int32GetDatum(order[i].pos + 1);
			v[1] = CStringGetTextDatum(order[i].key);
			v[2] = Int64GetDatum(evs[i - start].seq);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
		}
		last_keys[norders] = (char *) order[start].key;
		last_seqs[norders++] = evs[end - start - 1].seq;
		MemoryContextReset(per_order);
		CHECK_FOR_INTERRUPTS();
		start = end;
	}
	of_chain_end(&w);
	of_restore_user(&save);

	for (int i = 0; i < norders; i++)
		of_metrics_after_append(last_keys[i], last_seqs[i]);
	return (Datum) 0;
}

/*
 * order_flow.verify_audit(order_key DEFAULT NULL)
 *
 * Walks every chain (or one) in (order_key, seq) order with a cursor,
 * recomputes each hash and checks each link and the continuity of states
 * (each state-bearing event starts where the previous one ended); then
 * checks that each chain ends where its head in tracked_order says it does
 * (a deleted tail is a problem too) and that the head's state is the
 * chain's.  Returns one row per problem.  (SQL's verify_audit() adds the
 * managed rows that drifted from their chains.)
 */
PG_FUNCTION_INFO_V1(order_flow_verify_audit);
PG_FUNCTION_INFO_V1(order_flow_verify_audit_in);

static void
emit(Tuplestorestate *ts, TupleDesc desc, const char *key, int64 id, bool has_id,
	 const char *problem)
{
	Datum		v[3];
	bool		n[3] = {false, !has_id, false};

	v[0] = CStringGetTextDatum(key);
	v[1] = Int64GetDatum(id);
	v[2] = CStringGetTextDatum(problem);
	tuplestore_putvalues(ts, desc, v, n);
}

static Datum verify_chains(FunctionCallInfo fcinfo, int keyarg, const char *log, const char *head,
							bool by_dist);

Datum
order_flow_verify_audit(PG_FUNCTION_ARGS)
{
	return verify_chains(fcinfo, 0, "order_flow.audit_log", "order_flow.tracked_order", false);
}

/*
 * _order_flow._verify_chains_in(log, head, order_key): the same walk over a
 * Citus companion pair (order_flow.citus_verify_audit() runs it on each
 * worker, over the shards it holds), where a chain is an order of one
 * dist_key: in a table distributed by tenant, two tenants may use one key.
 */
Datum
order_flow_verify_audit_in(PG_FUNCTION_ARGS)
{
	char	   *log;
	char	   *head;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the log and head tables must not be null")));
	log = DatumGetCString(DirectFunctionCall1(regclassout, PG_GETARG_DATUM(0)));
	head = DatumGetCString(DirectFunctionCall1(regclassout, PG_GETARG_DATUM(1)));
	return verify_chains(fcinfo, 2, log, head, true);
}

static Datum
verify_chains(FunctionCallInfo fcinfo, int keyarg, const char *log, const char *head_rel, bool by_dist)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Tuplestorestate *ts;
	TupleDesc	desc;
	MemoryContext per_row;
	MemoryContext oldcxt;
	Portal		portal;
	SPIPlanPtr	plan;
	Oid			argt[1] = {TEXTOID};
	Datum		argv[1];
	char		argn[1];
	char		cur_key[1024] = "";
	char		cur_dist[1024] = "";
	bool		cur_key_long = false;
	uint8		last_hash[OF_HASH_LEN];
	bool		have_last = false;
	int64		expect_seq = 1;
	int			ret;
	char		last_state[256] = "";
	bool		have_state = false;	/* a state-bearing event was seen */
	bool		last_state_null = false;	/* ... and it ended the order */

	InitMaterializedSRF(fcinfo, 0);
	ts = rsinfo->setResult;
	desc = rsinfo->setDesc;

	argn[0] = PG_ARGISNULL(keyarg) ? 'n' : ' ';
	argv[0] = PG_ARGISNULL(keyarg) ? (Datum) 0 : PG_GETARG_DATUM(keyarg);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	per_row = AllocSetContextCreate(CurrentMemoryContext, "verify_audit row",
									ALLOCSET_DEFAULT_SIZES);

	plan = SPI_prepare(psprintf("SELECT order_key, id, seq, action, from_state, to_state, actor, db_user,"
								" occurred_at, recorded_at, details::text, prev_hash, hash, %s"
								" FROM %s"
								" WHERE $1 IS NULL OR order_key OPERATOR(pg_catalog.=) $1"
								" ORDER BY %s order_key, seq, id",
								by_dist ? OF_DIST_COLUMN "::pg_catalog.text" : "''::pg_catalog.text",
								log, by_dist ? OF_DIST_COLUMN "," : ""), 1, argt);
	if (plan == NULL)
		elog(ERROR, "could not prepare verification query");
	portal = SPI_cursor_open(NULL, plan, argv, argn, true);

	for (;;)
	{
		SPI_cursor_fetch(portal, true, 10000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			bool		isnull;
			bool		seq_null;
			bool		ph_null;
			bool		h_null;
			OfEvent		ev;
			uint8		h[OF_HASH_LEN];
			char	   *key;
			int64		id;
			bytea	   *ph;
			bytea	   *hh;
			Datum		d;
			char	   *dist;

			oldcxt = MemoryContextSwitchTo(per_row);

			key = TextDatumGetCString(SPI_getbinval(tup, td, 1, &isnull));
			id = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
			dist = TextDatumGetCString(SPI_getbinval(tup, td, 14, &isnull));
			if (cur_key_long || strcmp(key, cur_key) != 0 || strcmp(dist, cur_dist) != 0)
			{
				strlcpy(cur_key, key, sizeof(cur_key));
				strlcpy(cur_dist, dist, sizeof(cur_dist));
				cur_key_long = strlen(key) >= sizeof(cur_key);
				have_last = false;
				expect_seq = 1;
				have_state = false;
			}
			d = SPI_getbinval(tup, td, 3, &seq_null);
			ev.seq = seq_null ? 0 : DatumGetInt64(d);
			ev.order_key = key;
#define OPT_TEXT(col) (d = SPI_getbinval(tup, td, col, &isnull), isnull ? NULL : TextDatumGetCString(d))
			ev.action = OPT_TEXT(4);
			ev.from_state = OPT_TEXT(5);
			ev.to_state = OPT_TEXT(6);
			ev.actor = OPT_TEXT(7);
			ev.db_user = OPT_TEXT(8);
			ev.occurred_at = DatumGetTimestampTz(SPI_getbinval(tup, td, 9, &isnull));
			ev.recorded_at = DatumGetTimestampTz(SPI_getbinval(tup, td, 10, &isnull));
			ev.details = OPT_TEXT(11);
#undef OPT_TEXT
			d = SPI_getbinval(tup, td, 12, &ph_null);
			ph = ph_null ? NULL : DatumGetByteaPP(d);
			d = SPI_getbinval(tup, td, 13, &h_null);
			hh = h_null ? NULL : DatumGetByteaPP(d);

			if (seq_null || ev.seq != expect_seq)
				emit(ts, desc, key, id, true,
					 seq_null ? "event has no sequence number" :
					 psprintf("sequence %lld where %lld was expected",
							  (long long) ev.seq, (long long) expect_seq));
			if (!have_last ? ph != NULL :
				(ph == NULL || VARSIZE_ANY_EXHDR(ph) != OF_HASH_LEN ||
				 memcmp(VARDATA_ANY(ph), last_hash, OF_HASH_LEN) != 0))
				emit(ts, desc, key, id, true,
					 "broken link: prev_hash does not match the previous event's hash");

			ev.prev_hash = ph ? (uint8 *) VARDATA_ANY(ph) : NULL;
			ev.prev_hash_len = ph ? VARSIZE_ANY_EXHDR(ph) : 0;
			of_event_hash(&ev, h);
			if (hh == NULL || VARSIZE_ANY_EXHDR(hh) != OF_HASH_LEN ||
				memcmp(VARDATA_ANY(hh), h, OF_HASH_LEN) != 0)
				emit(ts, desc, key, id, true, "bad hash: the event's content does not match its hash");

			if (hh && VARSIZE_ANY_EXHDR(hh) == OF_HASH_LEN)
			{
				memcpy(last_hash, VARDATA_ANY(hh), OF_HASH_LEN);
				have_last = true;
			}
			else
				have_last = false;
			/*
			 * State continuity.  Events that carry no state (notify,
			 * acknowledge, escalate, logistics...) have neither; an adopted
			 * order's first state-bearing event may start anywhere.
			 */
			if (ev.from_state != NULL || ev.to_state != NULL)
			{
				if (have_state &&
					(last_state_null ? ev.from_state != NULL :
					 (ev.from_state == NULL || strcmp(ev.from_state, last_state) != 0)))
					emit(ts, desc, key, id, true,
						 psprintf("state discontinuity: the event starts from %s but the previous event ended in %s",
								  ev.from_state ? quote_identifier(ev.from_state) : "nothing",
								  last_state_null ? "nothing (deleted)" : quote_identifier(last_state)));
				have_state = true;
				last_state_null = (ev.to_state == NULL);
				strlcpy(last_state, ev.to_state ? ev.to_state : "", sizeof(last_state));
			}
			expect_seq = (seq_null ? expect_seq : ev.seq) + 1;
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(per_row);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);

	/* chain heads: the last event must be where tracked_order says */
	{
		const char *same = by_dist ? " AND l." OF_DIST_COLUMN " OPERATOR(pg_catalog.=) t." OF_DIST_COLUMN : "";

		ret = SPI_execute_with_args(psprintf(
											 "SELECT t.order_key, t.last_seq, a.seq, t.last_hash IS NOT DISTINCT FROM a.hash,"
											 "       t.state, s.to_state, s.seq IS NOT NULL"
											 "  FROM %s t"
											 "  LEFT JOIN LATERAL (SELECT seq, hash FROM %s l"
											 "        WHERE l.order_key OPERATOR(pg_catalog.=) t.order_key%s"
											 "        ORDER BY seq DESC NULLS LAST LIMIT 1) a ON true"
											 "  LEFT JOIN LATERAL (SELECT seq, to_state FROM %s l"
											 "        WHERE l.order_key OPERATOR(pg_catalog.=) t.order_key%s"
											 "          AND (l.from_state IS NOT NULL OR l.to_state IS NOT NULL)"
											 "        ORDER BY seq DESC NULLS LAST LIMIT 1) s ON t.tbl IS NOT NULL"
											 " WHERE ($1 IS NULL OR t.order_key OPERATOR(pg_catalog.=) $1)"
											 "   AND (t.last_seq OPERATOR(pg_catalog.<>) COALESCE(a.seq, 0)"
											 "        OR t.last_hash IS DISTINCT FROM a.hash"
											 "        OR (s.seq IS NOT NULL AND t.state IS DISTINCT FROM s.to_state))"
											 " ORDER BY 1",
											 head_rel, log, same, log, same),
									1, argt, argv, argn, true, 0);
	}
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not check chain heads");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *key = TextDatumGetCString(SPI_getbinval(tup, td, 1, &isnull));
		int64		head = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
		bool		seq_null;
		Datum		tail = SPI_getbinval(tup, td, 3, &seq_null);
		bool		hash_same = DatumGetBool(SPI_getbinval(tup, td, 4, &isnull));

		if (seq_null || DatumGetInt64(tail) != head || !hash_same)
			emit(ts, desc, key, 0, false,
				 psprintf("chain head says %lld events; the log ends elsewhere (events missing or added at the end)",
						  (long long) head));
		else
		{
			Datum		hs = SPI_getbinval(tup, td, 5, &isnull);
			char	   *head_state = isnull ? NULL : TextDatumGetCString(hs);
			Datum		cs = SPI_getbinval(tup, td, 6, &isnull);
			char	   *chain_state = isnull ? NULL : TextDatumGetCString(cs);

			emit(ts, desc, key, 0, false,
				 psprintf("chain head says the order is in state %s but its last event left it in %s",
						  head_state ? quote_identifier(head_state) : "none (deleted)",
						  chain_state ? quote_identifier(chain_state) : "none (deleted)"));
		}
	}
	SPI_finish();
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(order_flow_audit_guard);

/*
 * _order_flow._audit_guard(): refuses UPDATE, DELETE and TRUNCATE of the
 * audit log for every role, the owner included.
 */
Datum
order_flow_audit_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	const char *op = "modify";

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_order_flow._audit_guard() must be called as a trigger")));
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		op = "UPDATE";
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		op = "DELETE";
	else if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		op = "TRUNCATE";
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("%s of %s is not allowed: the audit log is append-only", op,
					RelationGetRelationName(td->tg_relation)),
			 errdetail("Events are appended by the order_flow functions and never rewritten.")));
	return PointerGetDatum(NULL);
}
