/*-------------------------------------------------------------------------
 *
 * metrics/agg_health.c
 *	  health_profile: the twelve customer health dimensions in one pass, and
 *	  the health score.
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
 * health_profile: the twelve customer health dimensions in one pass
 * ================================================================
 *
 * order_flow.health_profile(ordered_at, amount, category,
 *     contract_signed_at, shipped_at, promised_ship_date, delivered_at,
 *     accepted_at, rework_return, payment_due_amount, paid_on_time_amount,
 *     payments_late, service_requests, complaints, as_of)
 * takes one order_fact row per call and returns order_flow.health_values.
 * Each dimension is the one the stand-alone aggregate or SQL expression
 * documented in the install script computes (the tests check they agree);
 * one transition call per order instead of fifteen is what keeps
 * customer_health under a second at a million orders.
 */

enum
{
	HP_ORDERED_AT, HP_AMOUNT, HP_CATEGORY, HP_SIGNED, HP_SHIPPED, HP_PROMISED, HP_DELIVERED,
	HP_ACCEPTED, HP_REWORK, HP_DUE_AMOUNT, HP_ON_TIME_AMOUNT, HP_LATE, HP_SERVICE, HP_COMPLAINTS,
	HP_AS_OF
};

/*
 * Small (under 256 bytes, one allocator chunk size class down from 512) and
 * hot fields first: at a million orders over ten thousand customers each
 * row lands in a random group, so cache misses, not arithmetic, set the
 * pace.  Counters are int32 (checked): a group is one customer's orders.
 */
typedef struct HealthState
{
	IdSet		categories;
	int32		orders;
	int32		timed_orders;	/* orders with an ordered_at */
	int32		shipped;
	int32		on_time;
	int32		delivered;
	int32		right_first_time;
	int32		reworked;
	int32		late;
	int32		service;
	int32		complaints;
	TimestampTz last_order;
	float8		due_amount;
	float8		on_time_amount;
	TimestampTz as_of;
	Rhythm		r;
} HealthState;

static HealthState *
health_create(MemoryContext cxt, TimestampTz as_of, Dict *dict)
{
	HealthState *st = (HealthState *) MemoryContextAllocZero(cxt, sizeof(HealthState));

	st->as_of = as_of;
	st->last_order = DT_NOBEGIN;
	idset_init(&st->categories, dict);
	return st;
}


PG_FUNCTION_INFO_V1(order_flow_health_trans);

Datum
order_flow_health_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	HealthState *st = PG_ARGISNULL(0) ? NULL : (HealthState *) PG_GETARG_POINTER(0);
	TimestampTz as_of;

	agg_context(fcinfo, &aggcxt, "order_flow.health_profile()");
	as_of = as_of_arg(fcinfo, HP_AS_OF + 1);
	if (st == NULL)
	{
		(void) month_edges(as_of);
		st = health_create(aggcxt, as_of, fn_dict(fcinfo));
	}
	else
		same_as_of(st->as_of, as_of);

#define A(n) ((n) + 1)			/* argument n of the row (0 is the state) */
	if (unlikely(st->orders == PG_INT32_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many orders in one group for order_flow.health_profile()")));
	st->orders++;
	if (!PG_ARGISNULL(A(HP_ORDERED_AT)))
	{
		TimestampTz t = PG_GETARG_TIMESTAMPTZ(A(HP_ORDERED_AT));

		st->timed_orders++;
		if (t > st->last_order)
			st->last_order = t;
		rhythm_add(&st->r, month_edges(as_of), t, !PG_ARGISNULL(A(HP_AMOUNT)),
				   PG_ARGISNULL(A(HP_AMOUNT)) ? 0.0 : PG_GETARG_FLOAT8(A(HP_AMOUNT)));
	}
	if (!PG_ARGISNULL(A(HP_CATEGORY)))
	{
		text	   *c = PG_GETARG_TEXT_PP(A(HP_CATEGORY));

		idset_add_string(&st->categories, aggcxt, VARDATA_ANY(c), VARSIZE_ANY_EXHDR(c));
	}
	if (!PG_ARGISNULL(A(HP_SHIPPED)))
	{
		st->shipped++;
		if (shipped_on_time(PG_GETARG_TIMESTAMPTZ(A(HP_SHIPPED)),
							!PG_ARGISNULL(A(HP_PROMISED)),
							PG_ARGISNULL(A(HP_PROMISED)) ? 0 : PG_GETARG_DATEADT(A(HP_PROMISED)),
							!PG_ARGISNULL(A(HP_SIGNED)), ARG_TS(A(HP_SIGNED))))
			st->on_time++;
	}
	if (!PG_ARGISNULL(A(HP_DELIVERED)))
	{
		bool		rework = !PG_ARGISNULL(A(HP_REWORK)) && PG_GETARG_BOOL(A(HP_REWORK));

		st->delivered++;
		if (rework)
			st->reworked++;
		else if (!PG_ARGISNULL(A(HP_ACCEPTED)) && !PG_ARGISNULL(A(HP_REWORK)))
			st->right_first_time++;
	}
	/* most orders add nothing here: leave those cache lines alone */
	if (!PG_ARGISNULL(A(HP_DUE_AMOUNT)) && PG_GETARG_FLOAT8(A(HP_DUE_AMOUNT)) != 0.0)
		st->due_amount += PG_GETARG_FLOAT8(A(HP_DUE_AMOUNT));
	if (!PG_ARGISNULL(A(HP_ON_TIME_AMOUNT)) && PG_GETARG_FLOAT8(A(HP_ON_TIME_AMOUNT)) != 0.0)
		st->on_time_amount += PG_GETARG_FLOAT8(A(HP_ON_TIME_AMOUNT));
	if (!PG_ARGISNULL(A(HP_LATE)) && PG_GETARG_INT32(A(HP_LATE)) != 0)
		st->late += PG_GETARG_INT32(A(HP_LATE));
	if (!PG_ARGISNULL(A(HP_SERVICE)) && PG_GETARG_INT32(A(HP_SERVICE)) != 0)
		st->service += PG_GETARG_INT32(A(HP_SERVICE));
	if (!PG_ARGISNULL(A(HP_COMPLAINTS)) && PG_GETARG_INT32(A(HP_COMPLAINTS)) != 0)
		st->complaints += PG_GETARG_INT32(A(HP_COMPLAINTS));
#undef A
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_health_combine);

Datum
order_flow_health_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	HealthState *a = PG_ARGISNULL(0) ? NULL : (HealthState *) PG_GETARG_POINTER(0);
	HealthState *b = PG_ARGISNULL(1) ? NULL : (HealthState *) PG_GETARG_POINTER(1);

	agg_context(fcinfo, &aggcxt, "order_flow.health_profile()");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = health_create(aggcxt, b->as_of, b->categories.dict);
	same_as_of(a->as_of, b->as_of);
	if ((int64) a->orders + b->orders > PG_INT32_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many orders in one group for order_flow.health_profile()")));
	a->orders += b->orders;
	a->timed_orders += b->timed_orders;
	if (b->last_order > a->last_order)
		a->last_order = b->last_order;
	a->shipped += b->shipped;
	a->on_time += b->on_time;
	a->delivered += b->delivered;
	a->right_first_time += b->right_first_time;
	a->reworked += b->reworked;
	a->late += b->late;
	a->service += b->service;
	a->complaints += b->complaints;
	a->due_amount += b->due_amount;
	a->on_time_amount += b->on_time_amount;
	rhythm_merge(&a->r, &b->r);
	idset_merge(&a->categories, aggcxt, &b->categories);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(order_flow_health_serial);

Datum
order_flow_health_serial(PG_FUNCTION_ARGS)
{
	HealthState *st = (HealthState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->as_of);
	pq_sendint64(&buf, st->orders);
	pq_sendint64(&buf, st->timed_orders);
	pq_sendint64(&buf, st->last_order);
	pq_sendint64(&buf, st->shipped);
	pq_sendint64(&buf, st->on_time);
	pq_sendint64(&buf, st->delivered);
	pq_sendint64(&buf, st->right_first_time);
	pq_sendint64(&buf, st->reworked);
	pq_sendint64(&buf, st->late);
	pq_sendint64(&buf, st->service);
	pq_sendint64(&buf, st->complaints);
	pq_sendfloat8(&buf, st->due_amount);
	pq_sendfloat8(&buf, st->on_time_amount);
	rhythm_send(&buf, &st->r);
	idset_send(&buf, &st->categories);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(order_flow_health_deserial);

Datum
order_flow_health_deserial(PG_FUNCTION_ARGS)
{
	StringInfoData buf;
	HealthState *st;

	init_recv(&buf, PG_GETARG_BYTEA_PP(0));
	st = health_create(CurrentMemoryContext, pq_getmsgint64(&buf), fn_dict(fcinfo));
	st->orders = pq_getmsgint64(&buf);
	st->timed_orders = pq_getmsgint64(&buf);
	st->last_order = pq_getmsgint64(&buf);
	st->shipped = pq_getmsgint64(&buf);
	st->on_time = pq_getmsgint64(&buf);
	st->delivered = pq_getmsgint64(&buf);
	st->right_first_time = pq_getmsgint64(&buf);
	st->reworked = pq_getmsgint64(&buf);
	st->late = pq_getmsgint64(&buf);
	st->service = pq_getmsgint64(&buf);
	st->complaints = pq_getmsgint64(&buf);
	st->due_amount = pq_getmsgfloat8(&buf);
	st->on_time_amount = pq_getmsgfloat8(&buf);
	rhythm_recv(&buf, &st->r);
	idset_recv(&buf, &st->categories, CurrentMemoryContext);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

Datum
ratio(int64 num, int64 den, bool *isnull)
{
	*isnull = (den == 0);
	return Float8GetDatum(den == 0 ? 0.0 : (float8) num / (float8) den);
}

/* Columns of order_flow.health_values, in order. */
enum
{
	HV_ORDERS, HV_FREQUENCY, HV_RECENCY, HV_BREADTH, HV_PUNCTUALITY, HV_OVERDUE, HV_SERVICE,
	HV_COMPLAINTS, HV_ON_TIME, HV_RIGHT_FIRST_TIME, HV_REWORK, HV_TREND, HV_VOLATILITY,
	HV_MONTH_3, HV_MONTH_2, HV_MONTH_1,
	HV_COUNT
};

PG_FUNCTION_INFO_V1(order_flow_health_final);

Datum
order_flow_health_final(PG_FUNCTION_ARGS)
{
	HealthState *st = PG_ARGISNULL(0) ? NULL : (HealthState *) PG_GETARG_POINTER(0);
	TupleDesc	desc;
	Datum		values[HV_COUNT];
	bool		nulls[HV_COUNT];
	float8		r;

	if (st == NULL)
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE || desc->natts != HV_COUNT)
		elog(ERROR, "order_flow.health_profile() must return order_flow.health_values");
	desc = BlessTupleDesc(desc);
	memset(nulls, 0, sizeof(nulls));

	values[HV_ORDERS] = Int64GetDatum(st->orders);
	values[HV_FREQUENCY] = Float8GetDatum(rhythm_frequency(&st->r));
	nulls[HV_RECENCY] = st->timed_orders == 0;
	values[HV_RECENCY] = Float8GetDatum(st->timed_orders == 0 ? 0.0 :
										seconds_between(st->last_order, st->as_of) / 86400);
	values[HV_BREADTH] = Int32GetDatum(idset_count(&st->categories));
	nulls[HV_PUNCTUALITY] = st->due_amount == 0.0;
	values[HV_PUNCTUALITY] = Float8GetDatum(st->due_amount == 0.0 ? 0.0 :
											st->on_time_amount / st->due_amount);
	values[HV_OVERDUE] = Int64GetDatum(st->late);
	values[HV_SERVICE] = Int64GetDatum(st->service);
	values[HV_COMPLAINTS] = Int64GetDatum(st->complaints);
	values[HV_ON_TIME] = ratio(st->on_time, st->shipped, &nulls[HV_ON_TIME]);
	values[HV_RIGHT_FIRST_TIME] = ratio(st->right_first_time, st->delivered, &nulls[HV_RIGHT_FIRST_TIME]);
	values[HV_REWORK] = ratio(st->reworked, st->delivered, &nulls[HV_REWORK]);
	nulls[HV_TREND] = !rhythm_trend(&st->r, &r);
	values[HV_TREND] = Float8GetDatum(nulls[HV_TREND] ? 0.0 : r);
	nulls[HV_VOLATILITY] = !rhythm_volatility(&st->r, &r);
	values[HV_VOLATILITY] = Float8GetDatum(nulls[HV_VOLATILITY] ? 0.0 : r);
	values[HV_MONTH_3] = Int64GetDatum(st->r.recent[2]);
	values[HV_MONTH_2] = Int64GetDatum(st->r.recent[1]);
	values[HV_MONTH_1] = Int64GetDatum(st->r.recent[0]);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* ================================================================
 * The health score
 * ================================================================
 */

static float8 *
float8_array_values(ArrayType *a, int expected, bool **nulls, const char *what)
{
	Datum	   *d;
	int			n;
	float8	   *out;

	if (ARR_NDIM(a) > 1 || ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s must be a one-dimensional float8 array", what)));
	deconstruct_array(a, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &d, nulls, &n);
	if (n != expected)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("%s has %d elements, not %d", what, n, expected)));
	out = palloc(sizeof(float8) * Max(n, 1));
	for (int i = 0; i < n; i++)
		out[i] = (*nulls)[i] ? 0.0 : DatumGetFloat8(d[i]);
	return out;
}

PG_FUNCTION_INFO_V1(order_flow_health_score);

/*
 * _order_flow._health_score(vals, weights, bads, goods) -> float8: 100 x the
 * weighted mean of each value mapped linearly from its bad value (0) to
 * its good value (1) and clamped to [0, 1] (NaN counts as 1, as SQL's
 * greatest/least order it).  NULL values are left out and the remaining
 * weights rescaled; NULL when no weight remains.  NULL or zero weights
 * count as 0; bad = good (impossible in health_weight) scores 0.
 */
Datum
order_flow_health_score(PG_FUNCTION_ARGS)
{
	ArrayType  *vals_a = PG_GETARG_ARRAYTYPE_P(0);
	int			n = ArrayGetNItems(ARR_NDIM(vals_a), ARR_DIMS(vals_a));
	bool	   *vnull;
	bool	   *wnull;
	bool	   *bnull;
	bool	   *gnull;
	float8	   *vals = float8_array_values(vals_a, n, &vnull, "values");
	float8	   *weights = float8_array_values(PG_GETARG_ARRAYTYPE_P(1), n, &wnull, "weights");
	float8	   *bads = float8_array_values(PG_GETARG_ARRAYTYPE_P(2), n, &bnull, "bad values");
	float8	   *goods = float8_array_values(PG_GETARG_ARRAYTYPE_P(3), n, &gnull, "good values");
	float8		sum = 0.0;
	float8		wsum = 0.0;

	for (int i = 0; i < n; i++)
	{
		float8		x;

		if (vnull[i] || wnull[i] || weights[i] == 0.0)
			continue;
		x = (bnull[i] || gnull[i] || goods[i] == bads[i]) ? 0.0 :
			(vals[i] - bads[i]) / (goods[i] - bads[i]);
		if (isnan(x) || x > 1.0)
			x = 1.0;
		else if (x < 0.0)
			x = 0.0;
		sum += weights[i] * x;
		wsum += weights[i];
	}
	if (wsum == 0.0)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(100.0 * sum / wsum);
}

