/*-------------------------------------------------------------------------
 *
 * settings/business_tz.c
 *	  order_flow.business_time_zone: the one time zone in which the metrics
 *	  read dates (promised-date midnights, calendar months, seasons) and in
 *	  which the kpi() cache is built, whatever the session's TimeZone.
 *
 * The setting is superuser-only (PGC_SUSET): a DBA sets it per database
 * with ALTER DATABASE ... SET, and an ordinary session cannot change the
 * answers of a report by changing it.  A value set per role (ALTER ROLE
 * ... SET) is refused when a session applies it: two roles reading one
 * order book in two zones would see two truths and make the kpi() cache
 * rebuild for each.  Its default is the server's timezone setting: the
 * postmaster's when the library is preloaded (read at server start), else
 * log_timezone (which no session can change either).  The check hook
 * stores the zone's canonical name, so SHOW, the cache key and
 * order_flow.business_time_zone() agree however the zone was spelt.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"
#include "utils/guc.h"

#include "order_flow.h"
#include "compat.h"

static char *of_business_tz_setting = NULL;
static pg_tz *of_business_tz_value = NULL;

/* the boot value: the server's zone when the library was loaded */
static char boot_zone[TZ_STRLEN_MAX + 1];

static bool
check_business_tz(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz;
	pg_tz	  **parsed;
	const char *canonical;

	if (source == PGC_S_USER || source == PGC_S_DATABASE_USER)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("order_flow.business_time_zone cannot be set per role");
		GUC_check_errhint("Set it per database: ALTER DATABASE ... SET order_flow.business_time_zone = ...");
		return false;
	}
	if (*newval == NULL || **newval == '\0')
	{
		GUC_check_errdetail("The business time zone must be a time zone name such as \"Asia/Shanghai\".");
		return false;
	}
	tz = pg_tzset(*newval);
	if (tz == NULL)
	{
		GUC_check_errdetail("Time zone \"%s\" is not recognized.", *newval);
		return false;
	}
	if (!pg_tz_acceptable(tz))
	{
		GUC_check_errdetail("Time zone \"%s\" counts leap seconds; PostgreSQL does not support it.", *newval);
		return false;
	}
	parsed = of_guc_malloc(sizeof(pg_tz *));
	if (parsed == NULL)
		return false;
	*parsed = tz;
	canonical = pg_get_timezone_name(tz);
	if (canonical != NULL && strcmp(canonical, *newval) != 0)
	{
		char	   *copy = of_guc_strdup(canonical);

		if (copy == NULL)
		{
			of_guc_free(parsed);
			return false;
		}
		of_guc_free(*newval);
		*newval = copy;
	}
	*extra = parsed;
	return true;
}

static void
assign_business_tz(const char *newval, void *extra)
{
	of_business_tz_value = *(pg_tz **) extra;
}

/* Called from _PG_init. */
void
of_define_business_tz(void)
{
	pg_tz	   *server = process_shared_preload_libraries_in_progress ? session_timezone : log_timezone;
	const char *name = server != NULL ? pg_get_timezone_name(server) : NULL;

	strlcpy(boot_zone, name != NULL && pg_tz_acceptable(server) ? name : "UTC", sizeof(boot_zone));
	DefineCustomStringVariable("order_flow.business_time_zone",
							   "The time zone of the business: promised dates, months and seasons of the metrics.",
							   "Set it per database (ALTER DATABASE ... SET); the default is the server's timezone. "
							   "No metric depends on the session's TimeZone.",
							   &of_business_tz_setting, boot_zone, PGC_SUSET, 0,
							   check_business_tz, assign_business_tz, NULL);
}

/* The business time zone, for the C metrics. */
pg_tz *
of_business_tz(void)
{
	Assert(of_business_tz_value != NULL);
	return of_business_tz_value;
}

/*
 * The zone the C metrics read dates in: the business time zone from 1.2
 * on; for a database whose extension is still at 1.0 or 1.1 (between a
 * package upgrade and ALTER EXTENSION UPDATE), the session's, as those
 * versions' SQL does -- their kpi() cache is keyed by the session's
 * TimeZone, so a state computed in another zone under that key would later
 * be served as that zone's.
 */
pg_tz *
of_metrics_tz(void)
{
	return of_internal_schema_ready() ? of_business_tz() : session_timezone;
}

PG_FUNCTION_INFO_V1(order_flow_business_date);

/*
 * _order_flow._business_date(t): the calendar date of instant t in the
 * business time zone (for the SQL metrics: AT TIME ZONE would read a name
 * such as "CET" as the session's abbreviation first, a fixed offset).
 */
Datum
order_flow_business_date(PG_FUNCTION_ARGS)
{
	TimestampTz t = PG_GETARG_TIMESTAMPTZ(0);
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;

	if (TIMESTAMP_IS_NOBEGIN(t))
		PG_RETURN_DATEADT(DATEVAL_NOBEGIN);
	if (TIMESTAMP_IS_NOEND(t))
		PG_RETURN_DATEADT(DATEVAL_NOEND);
	if (timestamp2tm(t, &tz, &tm, &fsec, NULL, of_metrics_tz()) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	PG_RETURN_DATEADT(date2j(tm.tm_year, tm.tm_mon, tm.tm_mday) - POSTGRES_EPOCH_JDATE);
}

PG_FUNCTION_INFO_V1(order_flow_business_time_zone);

/* order_flow.business_time_zone(): the zone's canonical name. */
Datum
order_flow_business_time_zone(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(pg_get_timezone_name(of_business_tz())));
}
