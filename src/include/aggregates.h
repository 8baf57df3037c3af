/*-------------------------------------------------------------------------
 *
 * aggregates.h
 *	  What the C aggregates over the metrics rollup share (metrics/agg_*.c):
 *	  month boundaries and local midnights (agg_time.c), string
 *	  dictionaries and id sets (agg_dict.c), growable float8 arrays and their
 *	  median (agg_values.c), the order rhythm's state (agg_rhythm.c).  The
 *	  few steps every row takes are static inline here, so splitting the
 *	  families into files costs no call per row.
 *
 * Performance notes.  customer_health groups a million orders into ten
 * thousand customers, so every per-row step touches a different group's
 * state: states are kept small and contiguous (no pointer chasing per row),
 * and whatever depends only on the as-of instant or on the session time
 * zone -- month boundaries, local midnights -- is computed once per backend
 * and cached, not once per group or per row.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDER_FLOW_AGGREGATES_H
#define ORDER_FLOW_AGGREGATES_H

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define RHYTHM_MONTHS 12


/* ---- time (agg_time.c) ---- */
extern const TimestampTz *month_edges(TimestampTz as_of);
extern TimestampTz as_of_arg(FunctionCallInfo fcinfo, int argno);
extern void same_as_of(TimestampTz a, TimestampTz b);
extern TimestampTz local_midnight(DateADT day);
extern bool shipped_on_time(TimestampTz shipped, bool has_promised, DateADT promised, bool has_signed, TimestampTz signed_at);

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


/* ---- string dictionaries and id sets (agg_dict.c) ---- */
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

extern Dict *dict_create(MemoryContext cxt);
extern Dict *fn_dict(FunctionCallInfo fcinfo);
extern int32 dict_intern(Dict *d, const char *str, int32 len);
extern void idset_init(IdSet *s, Dict *dict);
extern int32 idset_count(const IdSet *s);
extern void idset_merge(IdSet *into, MemoryContext cxt, const IdSet *from);
extern void idset_send(StringInfo buf, const IdSet *s);
extern void idset_recv(StringInfo buf, IdSet *s, MemoryContext cxt);

static inline void
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

static inline void
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


/* ---- growable float8 arrays (agg_values.c) ---- */
typedef struct Values
{
	int64		n;
	int64		capacity;
	float8	   *v;
} Values;

#define VALUES_MAX	((int64) ((MaxAllocHugeSize / 2) / sizeof(float8)))

extern void values_reserve(Values *vals, MemoryContext cxt, int64 more);
extern void values_append(Values *into, MemoryContext cxt, const Values *from);
extern void values_send(StringInfo buf, const Values *vals);
extern void values_recv(StringInfo buf, Values *vals, MemoryContext cxt);
extern bool values_median(Values *vals, float8 *result);

static inline void
values_add(Values *vals, MemoryContext cxt, float8 x)
{
	if (vals->n == vals->capacity)
		values_reserve(vals, cxt, 1);
	vals->v[vals->n++] = x;
}


/* ---- aggregate support ---- */

/* a timestamptz argument, 0 when NULL */
#define ARG_TS(n) (PG_ARGISNULL(n) ? 0 : PG_GETARG_TIMESTAMPTZ(n))

static inline void
agg_context(FunctionCallInfo fcinfo, MemoryContext *cxt, const char *what)
{
	if (!AggCheckCallContext(fcinfo, cxt))
		elog(ERROR, "%s called in non-aggregate context", what);
}

static inline void
init_recv(StringInfo buf, bytea *b)
{
	initStringInfo(buf);
	appendBinaryStringInfo(buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
}


/* ---- the order rhythm (agg_rhythm.c) ---- */
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

extern void rhythm_merge(Rhythm *a, const Rhythm *b);
extern void rhythm_send(StringInfo buf, const Rhythm *r);
extern void rhythm_recv(StringInfo buf, Rhythm *r);
extern float8 rhythm_frequency(const Rhythm *r);
extern bool rhythm_volatility(const Rhythm *r, float8 *result);
extern bool rhythm_trend(const Rhythm *r, float8 *result);
extern ArrayType *last_three_months(const Rhythm *r);

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


/* ---- health (agg_health.c), also used by kpi_summary ---- */
extern Datum ratio(int64 num, int64 den, bool *isnull);

#endif							/* ORDER_FLOW_AGGREGATES_H */
