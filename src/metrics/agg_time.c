/*-------------------------------------------------------------------------
 *
 * metrics/agg_time.c
 *	  Month boundaries of an as-of instant and local midnights in the
 *	  business time zone (order_flow.business_time_zone, never the
 *	  session's TimeZone), cached per backend; on-time and duration helpers.
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

/*
 * Month boundaries for an as-of instant in the business time zone:
 * edge[0] is the start of the month after as_of's, edge[k + 1] the start of
 * the month k months before as_of's.  A row at ts falls in bucket k when
 * edge[k + 1] <= ts < edge[k]: bucket 0 is as_of's (partial) month, buckets
 * 1..12 the complete months before it.  Cached per (as_of, time zone).
 */
static TimestampTz edge_cache[RHYTHM_MONTHS + 2];
static TimestampTz edge_cache_as_of;
static pg_tz *edge_cache_tz = NULL;

/* Start of a month (year * 12 + month - 1) in the business time zone. */
static TimestampTz
month_start(int64 month, pg_tz *zone)
{
	struct pg_tm tm;
	int			tz;
	TimestampTz result;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int) (month >= 0 ? month / 12 : -((-month + 11) / 12));
	tm.tm_mon = (int) (month - (int64) tm.tm_year * 12) + 1;
	tm.tm_mday = 1;
	tz = DetermineTimeZoneOffset(&tm, zone);
	if (tm2timestamp(&tm, 0, &tz, &result) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	return result;
}

const TimestampTz *
month_edges(TimestampTz as_of)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	int64		anchor;
	pg_tz	   *zone = of_metrics_tz();

	if (edge_cache_tz == zone && edge_cache_as_of == as_of)
		return edge_cache;
	if (TIMESTAMP_NOT_FINITE(as_of) ||
		timestamp2tm(as_of, &tz, &tm, &fsec, NULL, zone) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("as_of must be a finite timestamp")));
	anchor = (int64) tm.tm_year * 12 + tm.tm_mon - 1;
	for (int k = 0; k < RHYTHM_MONTHS + 2; k++)
		edge_cache[k] = month_start(anchor + 1 - k, zone);
	edge_cache_as_of = as_of;
	edge_cache_tz = zone;
	return edge_cache;
}

TimestampTz
as_of_arg(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("as_of must not be null")));
	return PG_GETARG_TIMESTAMPTZ(argno);
}

void
same_as_of(TimestampTz a, TimestampTz b)
{
	if (a != b)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("as_of must be the same for every row of a group")));
}

/*
 * local_midnight(d): date d as timestamptz in the business time zone, as
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

TimestampTz
local_midnight(DateADT day)
{
	int			slot = (int) ((uint32) day % MIDNIGHT_CACHE);
	struct pg_tm tm;
	int			tz;
	TimestampTz result;
	pg_tz	   *zone = of_metrics_tz();

	if (midnight_cache_tz != zone)
	{
		for (int i = 0; i < MIDNIGHT_CACHE; i++)
			midnight_cache[i].day = DATEVAL_NOBEGIN;
		midnight_cache_tz = zone;
	}
	if (midnight_cache[slot].day == day)
		return midnight_cache[slot].at;
	if (DATE_NOT_FINITE(day))
		return DATE_IS_NOBEGIN(day) ? DT_NOBEGIN : DT_NOEND;
	j2date(day + POSTGRES_EPOCH_JDATE, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tz = DetermineTimeZoneOffset(&tm, zone);
	result = (TimestampTz) day * USECS_PER_DAY + (TimestampTz) tz * USECS_PER_SEC;
	midnight_cache[slot].day = day;
	midnight_cache[slot].at = result;
	return result;
}

/*
 * shipped_on_time: shipped no later than the promised date (business time
 * zone) when there is one, else within 48 hours of contract signing.
 * false when that cannot be judged.
 */
bool
shipped_on_time(TimestampTz shipped, bool has_promised, DateADT promised,
				bool has_signed, TimestampTz signed_at)
{
	if (has_promised)
		return !DATE_NOT_FINITE(promised) && shipped < local_midnight(promised + 1);
	if (has_signed)
		return shipped <= signed_at + 48 * USECS_PER_HOUR;
	return false;
}

