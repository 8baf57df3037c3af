/*-------------------------------------------------------------------------
 *
 * metrics/aggregates.c
 *	  The C aggregates behind customer_health and kpi(), over the per-order
 *	  rollup that metrics/fold.c keeps.
 *
 * Aggregates -- each with combine, serial and deserial functions and
 * declared PARALLEL SAFE; the internal states live in the aggregate memory
 * context, and a combine function copies what it takes from its second
 * argument, never keeping a pointer to it:
 *	 rhythm          order_frequency, order_volatility, order_value_trend and
 *					 monthly_orders share one state: per calendar month
 *					 (session time zone, like date_trunc('month', ...)) the
 *					 number of orders and their value, for the month of an
 *					 as-of instant and the 12 months before it;
 *	 breadth         exact number of distinct non-null text values (bytewise);
 *	 median          continuous median, identical to percentile_cont(0.5),
 *					 by selection instead of sorting;
 *	 health_profile  all twelve customer health dimensions in one pass --
 *					 what customer_health uses;
 *	 kpi_summary     kpi()'s row (two medians, mean, three rates) in one pass.
 * Serialised states are only exchanged between the processes of one
 * server (parallel workers), so float8 arrays travel in native layout.
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

#include "order_flow.h"

#ifndef HAVE_INT128
#error "order_flow needs a compiler with a 128-bit integer type (exact sums in the kpi aggregate)"
#endif

/* ================================================================
 * Shared pieces of the aggregates
 * ================================================================
 *
 * Performance notes.  customer_health groups a million orders into ten
 * thousand customers, so every per-row step touches a different group's
 * state: states are kept small and contiguous (no pointer chasing per row),
 * and whatever depends only on the as-of instant or on the session time
 * zone -- month boundaries, local midnights -- is computed once per backend
 * and cached, not once per group or per row.
 */

#define RHYTHM_MONTHS 12

/*
 * Month boundaries for an as-of instant in the session time zone:
 * edge[0] is the start of the month after as_of's, edge[k + 1] the start of
 * the month k months before as_of's.  A row at ts falls in bucket k when
 * edge[k + 1] <= ts < edge[k]: bucket 0 is as_of's (partial) month, buckets
 * 1..12 the complete months before it.  Cached per (as_of, time zone).
 */
static TimestampTz edge_cache[RHYTHM_MONTHS + 2];
static TimestampTz edge_cache_as_of;
static pg_tz *edge_cache_tz = NULL;

/* Start of a month (year * 12 + month - 1) in the session time zone. */
static TimestampTz
month_start(int64 month)
{
	struct pg_tm tm;
	int			tz;
	TimestampTz result;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int) (month >= 0 ? month / 12 : -((-month + 11) / 12));
	tm.tm_mon = (int) (month - (int64) tm.tm_year * 12) + 1;
	tm.tm_mday = 1;
	tz = DetermineTimeZoneOffset(&tm, session_timezone);
	if (tm2timestamp(&tm, 0, &tz, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

static const TimestampTz *
month_edges(TimestampTz as_of)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	int64		anchor;

	if (edge_cache_tz == session_timezone && edge_cache_as_of == as_of)
		return edge_cache;
	if (TIMESTAMP_NOT_FINITE(as_of) ||
		timestamp2tm(as_of, &tz, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("as_of must be a finite timestamp")));
	anchor = (int64) tm.tm_year * 12 + tm.tm_mon - 1;
	for (int k = 0; k < RHYTHM_MONTHS + 2; k++)
		edge_cache[k] = month_start(anchor + 1 - k);
	edge_cache_as_of = as_of;
	edge_cache_tz = session_timezone;
	return edge_cache;
}

/* The bucket of ts (see month_edges), or -1 when outside the 13 months. */
static inline int
month_bucket(const TimestampTz *edge, TimestampTz ts)
{
	int			k = 0;

	if (ts >= edge[0] || ts < edge[RHYTHM_MONTHS + 1])
		return -1;
	while (ts < edge[k + 1])
		k++;
	return k;
}

static TimestampTz
as_of_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null")));
	return PG_GETARG_TIMESTAMPTZ(argno);
}

static void
same_as_of(TimestampTz a, TimestampTz b)
{
	if (a != b)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be the same for every row of a group")));
}

/*
 * local_midnight(d): date d as timestamptz in the session time zone, as
 * date2timestamptz() computes it (so "shipped_at < promised_date + 1"
 * agrees with SQL), through a small cache: promised dates repeat a lot.
 */
#define MIDNIGHT_CACHE 1024
static struct
{
	DateADT		day;
	TimestampTz at;
}			midnight_cache[MIDNIGHT_CACHE];
static pg_tz *midnight_cache_tz = NULL;

static TimestampTz
local_midnight(DateADT day)
{
	int			slot = (int) ((uint32) day % MIDNIGHT_CACHE);
	struct pg_tm tm;
	int			tz;
	TimestampTz result;

	if (midnight_cache_tz != session_timezone)
	{
		for (int i = 0; i < MIDNIGHT_CACHE; i++)
			midnight_cache[i].day = DATEVAL_NOBEGIN;
		midnight_cache_tz = session_timezone;
	}
	if (midnight_cache[slot].day == day)
		return midnight_cache[slot].at;
	if (DATE_NOT_FINITE(day))
		return DATE_IS_NOBEGIN(day) ? DT_NOBEGIN : DT_NOEND;
	j2date(day + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tz = DetermineTimeZoneOffset(&tm, session_timezone);
	result = (TimestampTz) day * USECS_PER_DAY + (TimestampTz) tz * USECS_PER_SEC;
	midnight_cache[slot].day = day;
	midnight_cache[slot].at = result;
	return result;
}

/*
 * shipped_on_time: shipped no later than the promised date (session time
 * zone) when there is one, else within 48 hours of contract signing.
 * false when that cannot be judged.
 */
static bool
shipped_on_time(TimestampTz shipped, bool has_promised, DateADT promised,
				bool has_signed, TimestampTz signed_at)
{
	if (has_promised)
		return !DATE_NOT_FINITE(promised) && shipped < local_midnight(promised + 1);
	if (has_signed)
		return shipped <= signed_at + 48 * USECS_PER_HOUR;
	return false;
}

/*
 * Seconds (hours) between two instants exactly as date_part('epoch', b - a)
 * (/ 3600) computes them in SQL: the interval is justified into days and
 * time, and the two parts are added in float8.
 */
static inline float8
seconds_between(TimestampTz a, TimestampTz b)
{
	int64		span = b - a;
	int64		days = span / USECS_PER_DAY;
	int64		usecs = span - days * USECS_PER_DAY;
	float8		secs = usecs / 1000000.0;

	secs += ((float8) SECS_PER_DAY) * days;
	return secs;
}

static inline float8
hours_between(TimestampTz a, TimestampTz b)
{
	return seconds_between(a, b) / 3600;
}

/* ---- sets of distinct strings: a per-query dictionary + per-group ids ---- */

/*
 * A Dict interns strings to small integer ids.  One lives in fn_extra of
 * each aggregate support function (per query), hot in cache; a group's
 * IdSet then only holds ids: a 64-bit map for the first 64 ids and an
 * open-addressing set for the rest.  A set remembers its dictionary, so
 * states built by different support functions (transition, deserialise)
 * combine by string; states of one dictionary combine by id.  Serialised
 * sets carry the strings.
 */
typedef struct Dict
{
	MemoryContext cxt;
	int32		n;
	int32		capacity;		/* of the id arrays */
	int32		table_size;		/* power of two, > 2 * n */
	int32	   *table;			/* ids, -1 = empty */
	uint32	   *hashes;			/* by id */
	int32	   *lens;			/* by id */
	char	  **strs;			/* by id */
} Dict;

typedef struct IdSet
{
	uint64		bits;			/* ids 0..63 */
	Dict	   *dict;
	int32	   *extra;			/* ids >= 64, open addressing, -1 = empty */
	int32		nextra;
	int32		extra_size;		/* power of two, or 0 */
} IdSet;

static Dict *
dict_create(MemoryContext cxt)
{
	Dict	   *d = MemoryContextAlloc(cxt, sizeof(Dict));

	d->cxt = cxt;
	d->n = 0;
	d->capacity = 16;
	d->table_size = 64;
	d->table = MemoryContextAlloc(cxt, sizeof(int32) * d->table_size);
	memset(d->table, 0xff, sizeof(int32) * d->table_size);
	d->hashes = MemoryContextAlloc(cxt, sizeof(uint32) * d->capacity);
	d->lens = MemoryContextAlloc(cxt, sizeof(int32) * d->capacity);
	d->strs = MemoryContextAlloc(cxt, sizeof(char *) * d->capacity);
	return d;
}

/* The dictionary of the calling support function, created on first use. */
static Dict *
fn_dict(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = dict_create(fcinfo->flinfo->fn_mcxt);
	return (Dict *) fcinfo->flinfo->fn_extra;
}

static int32
dict_intern(Dict *d, const char *str, int32 len)
{
	uint32		h = hash_bytes((const unsigned char *) str, len);
	uint32		mask = d->table_size - 1;
	uint32		i = h & mask;
	int32		id;

	while ((id = d->table[i]) >= 0)
	{
		if (d->hashes[id] == h && d->lens[id] == len && memcmp(d->strs[id], str, len) == 0)
			return id;
		i = (i + 1) & mask;
	}
	if (d->n >= (1 << 26))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct values for a breadth count")));
	if (d->n == d->capacity)
	{
		d->capacity *= 2;
		d->hashes = repalloc(d->hashes, sizeof(uint32) * d->capacity);
		d->lens = repalloc(d->lens, sizeof(int32) * d->capacity);
		d->strs = repalloc(d->strs, sizeof(char *) * d->capacity);
	}
	id = d->n++;
	d->hashes[id] = h;
	d->lens[id] = len;
	d->strs[id] = MemoryContextAlloc(d->cxt, len > 0 ? len : 1);
	memcpy(d->strs[id], str, len);
	if (d->n * 2 > d->table_size)
	{
		d->table_size *= 2;
		d->table = repalloc(d->table, sizeof(int32) * d->table_size);
		memset(d->table, 0xff, sizeof(int32) * d->table_size);
		mask = d->table_size - 1;
		for (int32 j = 0; j < d->n; j++)
		{
			i = d->hashes[j] & mask;
			while (d->table[i] >= 0)
				i = (i + 1) & mask;
			d->table[i] = j;
		}
	}
	else
		d->table[i] = id;
	return id;
}

static void
idset_init(IdSet *s, Dict *dict)
{
	s->bits = 0;
	s->dict = dict;
	s->extra = NULL;
	s->nextra = 0;
	s->extra_size = 0;
}

static void
extra_place(int32 *table, int32 size, int32 id)
{
	uint32		mask = size - 1;
	uint32		i = hash_bytes_uint32((uint32) id) & mask;

	while (table[i] >= 0)
	{
		if (table[i] == id)
			return;
		i = (i + 1) & mask;
	}
	table[i] = id;
}

static void
idset_add(IdSet *s, MemoryContext cxt, int32 id)
{
	uint32		mask;
	uint32		i;

	if (id < 64)
	{
		s->bits |= UINT64CONST(1) << id;
		return;
	}
	if ((s->nextra + 1) * 2 > s->extra_size)
	{
		int32		size = s->extra_size == 0 ? 16 : s->extra_size * 2;
		int32	   *table = MemoryContextAlloc(cxt, sizeof(int32) * size);

		memset(table, 0xff, sizeof(int32) * size);
		for (int32 j = 0; j < s->extra_size; j++)
			if (s->extra[j] >= 0)
				extra_place(table, size, s->extra[j]);
		if (s->extra)
			pfree(s->extra);
		s->extra = table;
		s->extra_size = size;
	}
	mask = s->extra_size - 1;
	i = hash_bytes_uint32((uint32) id) & mask;
	while (s->extra[i] >= 0)
	{
		if (s->extra[i] == id)
			return;
		i = (i + 1) & mask;
	}
	s->extra[i] = id;
	s->nextra++;
}

static inline void
idset_add_string(IdSet *s, MemoryContext cxt, const char *str, int32 len)
{
	idset_add(s, cxt, dict_intern(s->dict, str, len));
}

static int32
idset_count(const IdSet *s)
{
	return pg_popcount((const char *) &s->bits, sizeof(s->bits)) + s->nextra;
}

/* Calls fn(id) for every member. */
#define IDSET_FOREACH(s, id, body) \
	do { \
		for (int32 id = 0; id < 64; id++) \
			if ((s)->bits & (UINT64CONST(1) << id)) { body; } \
		for (int32 j_ = 0; j_ < (s)->extra_size; j_++) \
		{ \
			int32 id = (s)->extra[j_]; \
			if (id >= 0) { body; } \
		} \
	} while (0)

static void
idset_merge(IdSet *into, MemoryContext cxt, const IdSet *from)
{
	if (into->dict == from->dict)
	{
		into->bits |= from->bits;
		for (int32 j = 0; j < from->extra_size; j++)
			if (from->extra[j] >= 0)
				idset_add(into, cxt, from->extra[j]);
		return;
	}
	IDSET_FOREACH(from, id,
				  idset_add_string(into, cxt, from->dict->strs[id], from->dict->lens[id]));
}

static void
idset_send(StringInfo buf, const IdSet *s)
{
	pq_sendint32(buf, idset_count(s));
	IDSET_FOREACH(s, id,
				  {
					  pq_sendint32(buf, s->dict->lens[id]);
					  pq_sendbytes(buf, s->dict->strs[id], s->dict->lens[id]);
				  });
}

static void
idset_recv(StringInfo buf, IdSet *s, MemoryContext cxt)
{
	int32		n = pq_getmsgint(buf, 4);

	for (int32 j = 0; j < n; j++)
	{
		int32		len = pq_getmsgint(buf, 4);
		const char *str = pq_getmsgbytes(buf, len);

		idset_add_string(s, cxt, str, len);
	}
}

/* ---- growable arrays of float8 (medians) ---- */

typedef struct Values
{
	int64		n;
	int64		capacity;
	float8	   *v;
} Values;

#define VALUES_MAX	((int64) ((MaxAllocHugeSize / 2) / sizeof(float8)))

static void
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

static inline void
values_add(Values *vals, MemoryContext cxt, float8 x)
{
	if (vals->n == vals->capacity)
		values_reserve(vals, cxt, 1);
	vals->v[vals->n++] = x;
}

static void
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
static void
values_send(StringInfo buf, const Values *vals)
{
	pq_sendint64(buf, vals->n);
	if (vals->n > 0)
		pq_sendbytes(buf, (const char *) vals->v, sizeof(float8) * vals->n);
}

static void
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
static bool
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

static void
agg_context(FunctionCallInfo fcinfo, MemoryContext *cxt, const char *what)
{
	if (!AggCheckCallContext(fcinfo, cxt))
		elog(ERROR, "%s called in non-aggregate context", what);
}

static void
init_recv(StringInfo buf, bytea *b)
{
	initStringInfo(buf);
	appendBinaryStringInfo(buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
}

/* ================================================================
 * Order rhythm: orders and order value per calendar month
 * ================================================================
 */

/*
 * What the finals need of the 13 months: the order counts of months 1-3
 * one by one and of months 4-12 in total, and the order value of months
 * 1-6 (month 0, the current one, counts for nothing).  80 bytes.
 */
typedef struct Rhythm
{
	int64		recent[3];		/* orders 1, 2, 3 months back */
	int64		older;			/* orders 4..12 months back */
	float8		value[6];		/* order value 1..6 months back */
} Rhythm;

typedef struct RhythmState
{
	TimestampTz as_of;
	Rhythm		r;
} RhythmState;

static inline void
rhythm_add(Rhythm *r, const TimestampTz *edge, TimestampTz ts, bool has_value, float8 value)
{
	int			k = month_bucket(edge, ts);

	if (k < 1)
		return;
	if (k <= 3)
		r->recent[k - 1]++;
	else
		r->older++;
	if (has_value && k <= 6)
		r->value[k - 1] += value;
}

static void
rhythm_merge(Rhythm *a, const Rhythm *b)
{
	for (int k = 0; k < 3; k++)
		a->recent[k] += b->recent[k];
	a->older += b->older;
	for (int k = 0; k < 6; k++)
		a->value[k] += b->value[k];
}

static void
rhythm_send(StringInfo buf, const Rhythm *r)
{
	for (int k = 0; k < 3; k++)
		pq_sendint64(buf, r->recent[k]);
	pq_sendint64(buf, r->older);
	for (int k = 0; k < 6; k++)
		pq_sendfloat8(buf, r->value[k]);
}

static void
rhythm_recv(StringInfo buf, Rhythm *r)
{
	for (int k = 0; k < 3; k++)
		r->recent[k] = pq_getmsgint64(buf);
	r->older = pq_getmsgint64(buf);
	for (int k = 0; k < 6; k++)
		r->value[k] = pq_getmsgfloat8(buf);
}

/* orders per month over the 12 complete months before as_of's month */
static float8
rhythm_frequency(const Rhythm *r)
{
	return (float8) (r->recent[0] + r->recent[1] + r->recent[2] + r->older) / RHYTHM_MONTHS;
}

/* population CV of the order counts of the 3 complete months; false if none */
static bool
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
static bool
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

static ArrayType *
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

#define ARG_TS(n) (PG_ARGISNULL(n) ? 0 : PG_GETARG_TIMESTAMPTZ(n))

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

static Datum
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
 * order_flow._kpi_merge(bytea): transition function folding serialised
 * kpi states (from order_flow.kpi_month, or _kpi_partial over raw rows)
 * into one; NULL states (months without orders) add nothing.
 */
Datum
order_flow_kpi_merge_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	KpiState   *st = PG_ARGISNULL(0) ? NULL : (KpiState *) PG_GETARG_POINTER(0);

	agg_context(fcinfo, &aggcxt, "order_flow._kpi_merge()");
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
 * order_flow._health_score(vals, weights, bads, goods) -> float8: 100 x the
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
