/*-------------------------------------------------------------------------
 *
 * metrics/agg_rhythm.c
 *	  Order rhythm: orders and order value per calendar month, and the
 *	  aggregates order_frequency, order_volatility, order_value_trend and
 *	  monthly_orders.
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
 * Order rhythm: orders and order value per calendar month
 * ================================================================
 */

void
rhythm_merge(Rhythm *a, const Rhythm *b)
{
	for (int k = 0; k < 3; k++)
		a->recent[k] += b->recent[k];
	a->older += b->older;
	for (int k = 0; k < 6; k++)
		a->value[k] += b->value[k];
}

void
rhythm_send(StringInfo buf, const Rhythm *r)
{
	for (int k = 0; k < 3; k++)
		pq_sendint64(buf, r->recent[k]);
	pq_sendint64(buf, r->older);
	for (int k = 0; k < 6; k++)
		pq_sendfloat8(buf, r->value[k]);
}

void
rhythm_recv(StringInfo buf, Rhythm *r)
{
	for (int k = 0; k < 3; k++)
		r->recent[k] = pq_getmsgint64(buf);
	r->older = pq_getmsgint64(buf);
	for (int k = 0; k < 6; k++)
		r->value[k] = pq_getmsgfloat8(buf);
}

/* orders per month over the 12 complete months before as_of's month */
float8
rhythm_frequency(const Rhythm *r)
{
	return (float8) (r->recent[0] + r->recent[1] + r->recent[2] + r->older) / RHYTHM_MONTHS;
}

/* population CV of the order counts of the 3 complete months; false if none */
bool
rhythm_volatility(const Rhythm *r, float8 *result)
{
	float8		mean = 0.0;
	float8		ss = 0.0;

	for (int k = 0; k < 3; k++)
		mean += (float8) r->recent[k];
	mean /= 3.0;
	if (mean == 0.0)
		return false;
	for (int k = 0; k < 3; k++)
		ss += ((float8) r->recent[k] - mean) * ((float8) r->recent[k] - mean);
	*result = sqrt(ss / 3.0) / mean;
	return true;
}

/* least-squares slope of the monthly value over 6 complete months / mean */
bool
rhythm_trend(const Rhythm *r, float8 *result)
{
	float8		mean = 0.0;
	float8		sxy = 0.0;
	float8		sxx = 0.0;

	for (int k = 1; k <= 6; k++)
		mean += r->value[k - 1];
	mean /= 6.0;
	if (mean == 0.0)
		return false;
	/* x = 0 for the oldest of the 6 months (6 months back) .. 5 for the last */
	for (int k = 1; k <= 6; k++)
	{
		float8		dx = (float8) (6 - k) - 2.5;

		sxy += dx * (r->value[k - 1] - mean);
		sxx += dx * dx;
	}
	*result = sxy / sxx / mean;
	return true;
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_trans);

/*
 * rhythm transition (state, ordered_at timestamptz, value float8,
 * as_of timestamptz): count the row (and add its value) in its calendar
 * month if that is as_of's month or one of the 12 before.  as_of must be
 * the same for every row of a group (a view passes now()).
 */
Datum
order_flow_rhythm_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	TimestampTz as_of;

	agg_context(fcinfo, &aggcxt, "order_flow rhythm aggregate");
	as_of = as_of_arg(fcinfo, 3);
	if (st == NULL)
	{
		(void) month_edges(as_of);	/* validates as_of */
		st = (RhythmState *) MemoryContextAllocZero(aggcxt, sizeof(RhythmState));
		st->as_of = as_of;
	}
	else
		same_as_of(st->as_of, as_of);
	if (!PG_ARGISNULL(1))
		rhythm_add(&st->r, month_edges(as_of), PG_GETARG_TIMESTAMPTZ(1),
				   !PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0.0 : PG_GETARG_FLOAT8(2));
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_combine);

Datum
order_flow_rhythm_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	RhythmState *a = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	RhythmState *b = PG_ARGISNULL(1) ? NULL : (RhythmState *) PG_GETARG_POINTER(1);

	agg_context(fcinfo, &aggcxt, "order_flow rhythm aggregate");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = (RhythmState *) MemoryContextAlloc(aggcxt, sizeof(RhythmState));
		memcpy(a, b, sizeof(RhythmState));
		PG_RETURN_POINTER(a);
	}
	same_as_of(a->as_of, b->as_of);
	rhythm_merge(&a->r, &b->r);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_serial);

Datum
order_flow_rhythm_serial(PG_FUNCTION_ARGS)
{
	RhythmState *st = (RhythmState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->as_of);
	rhythm_send(&buf, &st->r);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_deserial);

Datum
order_flow_rhythm_deserial(PG_FUNCTION_ARGS)
{
	RhythmState *st = (RhythmState *) palloc0(sizeof(RhythmState));
	StringInfoData buf;

	init_recv(&buf, PG_GETARG_BYTEA_PP(0));
	st->as_of = pq_getmsgint64(&buf);
	rhythm_recv(&buf, &st->r);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_frequency);

/* order_frequency: orders per month, 12 complete months before as_of's */
Datum
order_flow_rhythm_frequency(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);

	if (st == NULL)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(rhythm_frequency(&st->r));
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_volatility);

/*
 * order_volatility: coefficient of variation (population standard
 * deviation / mean) of the order counts of the 3 complete calendar months
 * before as_of's month; NULL when those months have no order.
 */
Datum
order_flow_rhythm_volatility(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	float8		r;

	if (st == NULL || !rhythm_volatility(&st->r, &r))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(r);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_trend);

/*
 * order_value_trend: least-squares slope of the monthly order value over
 * the 6 complete calendar months before as_of's month, divided by the mean
 * monthly value -- the relative change per month (0.05 = +5 % a month);
 * NULL when those months have no order value.
 */
Datum
order_flow_rhythm_trend(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);
	float8		r;

	if (st == NULL || !rhythm_trend(&st->r, &r))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(r);
}

ArrayType *
last_three_months(const Rhythm *r)
{
	Datum		elems[3];

	for (int i = 0; i < 3; i++)
		elems[i] = Int64GetDatum(r->recent[2 - i]);
	return construct_array(elems, 3, INT8OID, sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

PG_FUNCTION_INFO_V1(order_flow_rhythm_months);

/*
 * monthly_orders: the order counts of the 3 complete calendar months
 * before as_of's month, oldest first (bigint[3]).
 */
Datum
order_flow_rhythm_months(PG_FUNCTION_ARGS)
{
	RhythmState *st = PG_ARGISNULL(0) ? NULL : (RhythmState *) PG_GETARG_POINTER(0);

	if (st == NULL)
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(last_three_months(&st->r));
}

