/*-------------------------------------------------------------------------
 *
 * metrics/agg_kpi.c
 *	  kpi_summary: kpi()'s row in one pass; the serialised partial states the
 *	  kpi() cache keeps per month, and their merge.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "aggregates.h"
#include "order_flow.h"

/* ================================================================
 * kpi_summary: the source case's KPIs in one pass
 * ================================================================
 *
 * order_flow.kpi_summary(contract_signed_at, first_logistics_at,
 *     shipped_at, promised_ship_date, delivered_at, accepted_at,
 *     rework_return, exceptions) over order_fact rows returns
 * order_flow.kpi_values -- the row kpi() returns; usable with GROUP BY for
 * KPIs per region, customer class or month.
 */

enum
{
	KP_SIGNED, KP_LOGISTICS, KP_SHIPPED, KP_PROMISED, KP_DELIVERED, KP_ACCEPTED, KP_REWORK,
	KP_EXCEPTIONS
};

typedef struct KpiState
{
	int64		orders;
	int64		shipped;
	int64		on_time;
	int64		delivered;
	int64		right_first_time;
	int64		with_exception;
	int128		processing_usecs;	/* exact: the mean does not depend on the
									 * order rows are summed in (parallel) */
	Values		to_logistics;
	Values		processing;
} KpiState;

PG_FUNCTION_INFO_V1(order_flow_kpi_trans);

Datum
order_flow_kpi_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	KpiState   *st = PG_ARGISNULL(0) ? NULL : (KpiState *) PG_GETARG_POINTER(0);
	bool		has_signed;
	TimestampTz signed_at;

	agg_context(fcinfo, &aggcxt, "order_flow.kpi_summary()");
	if (st == NULL)
		st = (KpiState *) MemoryContextAllocZero(aggcxt, sizeof(KpiState));

#define A(n) ((n) + 1)
	has_signed = !PG_ARGISNULL(A(KP_SIGNED));
	signed_at = ARG_TS(A(KP_SIGNED));
	st->orders++;
	if (has_signed && !PG_ARGISNULL(A(KP_LOGISTICS)))
		values_add(&st->to_logistics, aggcxt,
				   hours_between(signed_at, PG_GETARG_TIMESTAMPTZ(A(KP_LOGISTICS))));
	if (!PG_ARGISNULL(A(KP_SHIPPED)))
	{
		TimestampTz shipped = PG_GETARG_TIMESTAMPTZ(A(KP_SHIPPED));

		st->shipped++;
		if (has_signed)
		{
			values_add(&st->processing, aggcxt, hours_between(signed_at, shipped));
			st->processing_usecs += (int128) (shipped - signed_at);
		}
		if (shipped_on_time(shipped, !PG_ARGISNULL(A(KP_PROMISED)),
							PG_ARGISNULL(A(KP_PROMISED)) ? 0 : PG_GETARG_DATEADT(A(KP_PROMISED)),
							has_signed, signed_at))
			st->on_time++;
	}
	if (!PG_ARGISNULL(A(KP_DELIVERED)))
	{
		st->delivered++;
		if (!PG_ARGISNULL(A(KP_ACCEPTED)) && !PG_ARGISNULL(A(KP_REWORK)) &&
			!PG_GETARG_BOOL(A(KP_REWORK)))
			st->right_first_time++;
	}
	if (!PG_ARGISNULL(A(KP_EXCEPTIONS)) && PG_GETARG_INT32(A(KP_EXCEPTIONS)) > 0)
		st->with_exception++;
#undef A
	PG_RETURN_POINTER(st);
}

/* a += b; b is only read (its values are copied into cxt). */
static void
kpi_state_add(KpiState *a, MemoryContext cxt, const KpiState *b)
{
	a->orders += b->orders;
	a->shipped += b->shipped;
	a->on_time += b->on_time;
	a->delivered += b->delivered;
	a->right_first_time += b->right_first_time;
	a->with_exception += b->with_exception;
	a->processing_usecs += b->processing_usecs;
	values_append(&a->to_logistics, cxt, &b->to_logistics);
	values_append(&a->processing, cxt, &b->processing);
}

PG_FUNCTION_INFO_V1(order_flow_kpi_combine);

Datum
order_flow_kpi_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	KpiState   *a = PG_ARGISNULL(0) ? NULL : (KpiState *) PG_GETARG_POINTER(0);
	KpiState   *b = PG_ARGISNULL(1) ? NULL : (KpiState *) PG_GETARG_POINTER(1);

	agg_context(fcinfo, &aggcxt, "order_flow.kpi_summary()");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = (KpiState *) MemoryContextAllocZero(aggcxt, sizeof(KpiState));
	kpi_state_add(a, aggcxt, b);
	PG_RETURN_POINTER(a);
}

/*
 * The serialised state starts with a tag: besides travelling between
 * parallel workers it is kept in order_flow.kpi_month (the kpi() cache),
 * so a library that changes the layout must not misread an old one.
 */
#define KPI_STATE_TAG	((int32) 0x4B504931)	/* "KPI1" */

PG_FUNCTION_INFO_V1(order_flow_kpi_serial);

Datum
order_flow_kpi_serial(PG_FUNCTION_ARGS)
{
	KpiState   *st = (KpiState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, KPI_STATE_TAG);
	pq_sendint64(&buf, st->orders);
	pq_sendint64(&buf, st->shipped);
	pq_sendint64(&buf, st->on_time);
	pq_sendint64(&buf, st->delivered);
	pq_sendint64(&buf, st->right_first_time);
	pq_sendint64(&buf, st->with_exception);
	pq_sendint64(&buf, (int64) (st->processing_usecs >> 64));
	pq_sendint64(&buf, (int64) (uint64) st->processing_usecs);
	values_send(&buf, &st->to_logistics);
	values_send(&buf, &st->processing);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* st += the serialised state b (values appended into cxt); returns st. */
static KpiState *
kpi_state_recv_add(KpiState *st, MemoryContext cxt, bytea *b)
{
	StringInfoData buf;
	int128		usecs;

	init_recv(&buf, b);
	if (buf.len < (int) sizeof(int32) || pq_getmsgint(&buf, 4) != KPI_STATE_TAG)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("not a kpi state of this version of order_flow"),
				 errhint("Empty the kpi() cache with TRUNCATE order_flow.kpi_month; "
						 "order_flow.kpi_cache_refresh() rebuilds it.")));
	st->orders += pq_getmsgint64(&buf);
	st->shipped += pq_getmsgint64(&buf);
	st->on_time += pq_getmsgint64(&buf);
	st->delivered += pq_getmsgint64(&buf);
	st->right_first_time += pq_getmsgint64(&buf);
	st->with_exception += pq_getmsgint64(&buf);
	usecs = (int128) pq_getmsgint64(&buf) << 64;
	usecs |= (int128) (uint64) pq_getmsgint64(&buf);
	st->processing_usecs += usecs;
	values_recv(&buf, &st->to_logistics, cxt);
	values_recv(&buf, &st->processing, cxt);
	pq_getmsgend(&buf);
	return st;
}

PG_FUNCTION_INFO_V1(order_flow_kpi_deserial);

Datum
order_flow_kpi_deserial(PG_FUNCTION_ARGS)
{
	KpiState   *st = (KpiState *) palloc0(sizeof(KpiState));

	PG_RETURN_POINTER(kpi_state_recv_add(st, CurrentMemoryContext, PG_GETARG_BYTEA_PP(0)));
}

PG_FUNCTION_INFO_V1(order_flow_kpi_merge_trans);

/*
 * _order_flow._kpi_merge(bytea): transition function folding serialised
 * kpi states (from order_flow.kpi_month, or _kpi_partial over raw rows)
 * into one; NULL states (months without orders) add nothing.
 */
Datum
order_flow_kpi_merge_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	KpiState   *st = PG_ARGISNULL(0) ? NULL : (KpiState *) PG_GETARG_POINTER(0);

	agg_context(fcinfo, &aggcxt, "_order_flow._kpi_merge()");
	if (st == NULL)
		st = (KpiState *) MemoryContextAllocZero(aggcxt, sizeof(KpiState));
	if (!PG_ARGISNULL(1))
		(void) kpi_state_recv_add(st, aggcxt, PG_GETARG_BYTEA_PP(1));
	PG_RETURN_POINTER(st);
}

/* Columns of order_flow.kpi_values, in order (kpi()'s result). */
enum
{
	KV_ORDERS, KV_MEDIAN_LOGISTICS, KV_MEAN_PROCESSING, KV_MEDIAN_PROCESSING, KV_ON_TIME,
	KV_RIGHT_FIRST_TIME, KV_EXCEPTION,
	KV_COUNT
};

PG_FUNCTION_INFO_V1(order_flow_kpi_final);

/* Like an empty kpi() window, no rows give 0 orders and NULL for the rest. */
Datum
order_flow_kpi_final(PG_FUNCTION_ARGS)
{
	KpiState   *st = PG_ARGISNULL(0) ? NULL : (KpiState *) PG_GETARG_POINTER(0);
	KpiState	empty;
	TupleDesc	desc;
	Datum		values[KV_COUNT];
	bool		nulls[KV_COUNT];
	float8		m;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE || desc->natts != KV_COUNT)
		elog(ERROR, "order_flow.kpi_summary() must return order_flow.kpi_values");
	desc = BlessTupleDesc(desc);
	if (st == NULL)
	{
		memset(&empty, 0, sizeof(empty));
		st = &empty;
	}
	memset(nulls, 0, sizeof(nulls));
	values[KV_ORDERS] = Int64GetDatum(st->orders);
	nulls[KV_MEDIAN_LOGISTICS] = !values_median(&st->to_logistics, &m);
	values[KV_MEDIAN_LOGISTICS] = Float8GetDatum(nulls[KV_MEDIAN_LOGISTICS] ? 0.0 : m);
	nulls[KV_MEAN_PROCESSING] = st->processing.n == 0;
	values[KV_MEAN_PROCESSING] = Float8GetDatum(st->processing.n == 0 ? 0.0 :
												(float8) st->processing_usecs / st->processing.n
												/ USECS_PER_HOUR);
	nulls[KV_MEDIAN_PROCESSING] = !values_median(&st->processing, &m);
	values[KV_MEDIAN_PROCESSING] = Float8GetDatum(nulls[KV_MEDIAN_PROCESSING] ? 0.0 : m);
	values[KV_ON_TIME] = ratio(st->on_time, st->shipped, &nulls[KV_ON_TIME]);
	values[KV_RIGHT_FIRST_TIME] = ratio(st->right_first_time, st->delivered, &nulls[KV_RIGHT_FIRST_TIME]);
	values[KV_EXCEPTION] = ratio(st->with_exception, st->orders, &nulls[KV_EXCEPTION]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

