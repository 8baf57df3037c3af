/*-------------------------------------------------------------------------
 *
 * metrics/agg_median.c
 *	  median(float8): the continuous median, equal to percentile_cont(0.5).
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
 * Median: continuous median, as percentile_cont(0.5)
 * ================================================================
 */

PG_FUNCTION_INFO_V1(order_flow_median_trans);

Datum
order_flow_median_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	Values	   *st = PG_ARGISNULL(0) ? NULL : (Values *) PG_GETARG_POINTER(0);

	agg_context(fcinfo, &aggcxt, "order_flow.median()");
	if (st == NULL)
		st = (Values *) MemoryContextAllocZero(aggcxt, sizeof(Values));
	if (!PG_ARGISNULL(1))
		values_add(st, aggcxt, PG_GETARG_FLOAT8(1));
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_median_combine);

Datum
order_flow_median_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	Values	   *a = PG_ARGISNULL(0) ? NULL : (Values *) PG_GETARG_POINTER(0);
	Values	   *b = PG_ARGISNULL(1) ? NULL : (Values *) PG_GETARG_POINTER(1);

	agg_context(fcinfo, &aggcxt, "order_flow.median()");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
		a = (Values *) MemoryContextAllocZero(aggcxt, sizeof(Values));
	values_append(a, aggcxt, b);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(order_flow_median_serial);

Datum
order_flow_median_serial(PG_FUNCTION_ARGS)
{
	Values	   *st = (Values *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	values_send(&buf, st);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(order_flow_median_deserial);

Datum
order_flow_median_deserial(PG_FUNCTION_ARGS)
{
	Values	   *st = (Values *) palloc0(sizeof(Values));
	StringInfoData buf;

	init_recv(&buf, PG_GETARG_BYTEA_PP(0));
	values_recv(&buf, st, CurrentMemoryContext);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_median_final);

/*
 * The final function reorders the values in place but never changes them,
 * so calling it again (or after more rows) gives the right answer: the
 * state stays shareable.
 */
Datum
order_flow_median_final(PG_FUNCTION_ARGS)
{
	Values	   *st = PG_ARGISNULL(0) ? NULL : (Values *) PG_GETARG_POINTER(0);
	float8		m;

	if (st == NULL || !values_median(st, &m))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(m);
}

