/*-------------------------------------------------------------------------
 *
 * metrics/agg_values.c
 *	  Growable arrays of float8 and their exact median by selection (median,
 *	  kpi_summary).
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

/* ---- growable arrays of float8 (medians) ---- */

void
values_reserve(Values *vals, MemoryContext cxt, int64 more)
{
	int64		need = vals->n + more;

	if (need > VALUES_MAX || need > (int64) ((MaxAllocSize - VARHDRSZ) / sizeof(float8)) - 64)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many values for a median (at most " INT64_FORMAT ")",
						(int64) ((MaxAllocSize - VARHDRSZ) / sizeof(float8)) - 64)));
	if (need <= vals->capacity)
		return;
	if (vals->capacity == 0)
	{
		vals->capacity = Max(need, 64);
		vals->v = MemoryContextAllocHuge(cxt, sizeof(float8) * vals->capacity);
		return;
	}
	while (vals->capacity < need)
		vals->capacity *= 2;
	vals->v = repalloc_huge(vals->v, sizeof(float8) * vals->capacity);
}

void
values_append(Values *into, MemoryContext cxt, const Values *from)
{
	if (from->n == 0)
		return;
	values_reserve(into, cxt, from->n);
	memcpy(into->v + into->n, from->v, sizeof(float8) * from->n);
	into->n += from->n;
}

/*
 * The values travel in the server's native float8 layout: a state only
 * moves between processes of one server (parallel workers), never to disk
 * or another machine.
 */
void
values_send(StringInfo buf, const Values *vals)
{
	pq_sendint64(buf, vals->n);
	if (vals->n > 0)
		pq_sendbytes(buf, (const char *) vals->v, sizeof(float8) * vals->n);
}

void
values_recv(StringInfo buf, Values *vals, MemoryContext cxt)
{
	int64		n = pq_getmsgint64(buf);

	if (n < 0 || n > (int64) ((buf->len - buf->cursor) / sizeof(float8)))
		elog(ERROR, "invalid median state");
	values_reserve(vals, cxt, n);
	if (n > 0)
		memcpy(vals->v + vals->n, pq_getmsgbytes(buf, sizeof(float8) * n), sizeof(float8) * n);
	vals->n += n;
}

/* float8 order as btree sorts it: NaN after everything, equal to NaN. */
static inline int
float8_order(float8 a, float8 b)
{
	if (isnan(a))
		return isnan(b) ? 0 : 1;
	if (isnan(b))
		return -1;
	return (a > b) - (a < b);
}

/*
 * select_kth: rearrange v[0..n-1] so that v[k] holds the value that sorts
 * k-th, everything before it sorts no later and everything after it no
 * earlier (Hoare's selection, median-of-three pivots).
 */
static void
select_kth(float8 *v, int64 n, int64 k)
{
	int64		lo = 0;
	int64		hi = n - 1;

	while (hi > lo)
	{
		int64		mid = lo + (hi - lo) / 2;
		int64		i;
		int64		j;
		float8		pivot;
		float8		t;

#define SWAP(x, y) (t = v[x], v[x] = v[y], v[y] = t)
		if (float8_order(v[mid], v[lo]) < 0)
			SWAP(mid, lo);
		if (float8_order(v[hi], v[lo]) < 0)
			SWAP(hi, lo);
		if (float8_order(v[hi], v[mid]) < 0)
			SWAP(hi, mid);
		pivot = v[mid];
		i = lo;
		j = hi;
		while (i <= j)
		{
			while (float8_order(v[i], pivot) < 0)
				i++;
			while (float8_order(v[j], pivot) > 0)
				j--;
			if (i <= j)
			{
				SWAP(i, j);
				i++;
				j--;
			}
		}
#undef SWAP
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;				/* j < k < i: v[k] equals the pivot */
	}
}

/*
 * values_median: the continuous median, exactly as percentile_cont(0.5)
 * computes it (lo + 0.5 * (hi - lo) for an even count); false when empty.
 * Reorders the values but never changes them, so it may run again.
 */
bool
values_median(Values *vals, float8 *result)
{
	int64		k;
	float8		lo;
	float8		hi;

	if (vals->n == 0)
		return false;
	k = (vals->n - 1) / 2;
	select_kth(vals->v, vals->n, k);
	lo = vals->v[k];
	if (vals->n % 2 == 1)
	{
		*result = lo;
		return true;
	}
	hi = vals->v[k + 1];
	for (int64 i = k + 2; i < vals->n; i++)
		if (float8_order(vals->v[i], hi) < 0)
			hi = vals->v[i];
	*result = lo + (0.5 * (hi - lo));
	return true;
}

