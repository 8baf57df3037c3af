/*-------------------------------------------------------------------------
 *
 * metrics/agg_breadth.c
 *	  breadth(text): the exact number of distinct non-null values.
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
 * Breadth: exact count of distinct text values
 * ================================================================
 */

PG_FUNCTION_INFO_V1(order_flow_breadth_trans);

Datum
order_flow_breadth_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	IdSet	   *st = PG_ARGISNULL(0) ? NULL : (IdSet *) PG_GETARG_POINTER(0);

	agg_context(fcinfo, &aggcxt, "order_flow.breadth()");
	if (st == NULL)
	{
		st = (IdSet *) MemoryContextAlloc(aggcxt, sizeof(IdSet));
		idset_init(st, fn_dict(fcinfo));
	}
	if (!PG_ARGISNULL(1))
	{
		text	   *t = PG_GETARG_TEXT_PP(1);

		idset_add_string(st, aggcxt, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_breadth_combine);

Datum
order_flow_breadth_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	IdSet	   *a = PG_ARGISNULL(0) ? NULL : (IdSet *) PG_GETARG_POINTER(0);
	IdSet	   *b = PG_ARGISNULL(1) ? NULL : (IdSet *) PG_GETARG_POINTER(1);

	agg_context(fcinfo, &aggcxt, "order_flow.breadth()");
	if (b == NULL)
	{
		if (a == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(a);
	}
	if (a == NULL)
	{
		a = (IdSet *) MemoryContextAlloc(aggcxt, sizeof(IdSet));
		idset_init(a, b->dict);
	}
	idset_merge(a, aggcxt, b);
	PG_RETURN_POINTER(a);
}

PG_FUNCTION_INFO_V1(order_flow_breadth_serial);

Datum
order_flow_breadth_serial(PG_FUNCTION_ARGS)
{
	IdSet	   *st = (IdSet *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	idset_send(&buf, st);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(order_flow_breadth_deserial);

Datum
order_flow_breadth_deserial(PG_FUNCTION_ARGS)
{
	IdSet	   *st = (IdSet *) palloc(sizeof(IdSet));
	StringInfoData buf;

	idset_init(st, fn_dict(fcinfo));
	init_recv(&buf, PG_GETARG_BYTEA_PP(0));
	idset_recv(&buf, st, CurrentMemoryContext);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(order_flow_breadth_final);

Datum
order_flow_breadth_final(PG_FUNCTION_ARGS)
{
	IdSet	   *st = PG_ARGISNULL(0) ? NULL : (IdSet *) PG_GETARG_POINTER(0);

	PG_RETURN_INT32(st == NULL ? 0 : idset_count(st));
}

