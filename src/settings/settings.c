/*-------------------------------------------------------------------------
 *
 * settings/settings.c
 *	  Module initialisation: settings, shared memory and the launcher.
 *
 * Session settings (the claimed actor, a reason for plain UPDATEs) exist
 * whenever the library is loaded.  The worker's settings, its shared
 * memory and the launcher exist only when the library comes in through
 * shared_preload_libraries: defining PGC_POSTMASTER/SIGHUP settings later
 * would make CREATE EXTENSION in a server without the preload die.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "order_flow.h"
#include "shmem.h"

PG_MODULE_MAGIC;

char	   *of_actor_setting = NULL;
char	   *of_reason_setting = NULL;
static char *of_station_setting = NULL;
bool		of_preloaded = false;
char	   *of_database_setting = NULL;
int			of_naptime = 60;
int			of_batch_size = 1000;
bool		of_enabled = true;
int			of_metrics_fold_mode = OF_FOLD_AUTO;
bool		of_notify_enabled = true;

static const struct config_enum_entry fold_modes[] = {
	{"auto", OF_FOLD_AUTO, false},
	{"sync", OF_FOLD_SYNC, false},
	{"async", OF_FOLD_ASYNC, false},
	{NULL, 0, false}
};

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("order_flow.actor",
							   "The business actor on whose behalf this session acts.",
							   "Pooled application connections set it per transaction; empty means session_user.",
							   &of_actor_setting, "", PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("order_flow.reason",
							   "Reason recorded with the next plain UPDATE transitions of this session.",
							   "Edges that require a reason accept it from here when no note is given.",
							   &of_reason_setting, "", PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("order_flow.station",
							   "Name of the shipping station this session works at.",
							   "Recorded with every station step for the heat map.",
							   &of_station_setting, "", PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("order_flow.batch_size",
							"Notifications or reminders handled per escalation batch.",
							NULL, &of_batch_size, 1000, 1, 1000000, PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("order_flow.metrics_fold",
							 "When events are folded into the metrics rollup: auto, sync or async.",
							 "async: by the scheduler, within about a second of commit; sync: in the "
							 "transaction that writes them; auto: async when a scheduler serves the "
							 "database, else sync.",
							 &of_metrics_fold_mode, OF_FOLD_AUTO, fold_modes, PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("order_flow.notify",
							 "Whether transitions send pg_notify('order_flow', ...) at commit.",
							 "The durable outbox carries every broadcast either way; NOTIFY cannot be "
							 "used in a transaction prepared for two-phase commit.",
							 &of_notify_enabled, true, PGC_USERSET, 0, NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		of_preloaded = true;
		DefineCustomStringVariable("order_flow.database",
								   "Databases the escalation worker serves (comma-separated; empty: every database with the extension).",
								   NULL, &of_database_setting, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
		DefineCustomIntVariable("order_flow.naptime",
								"Longest sleep of the escalation scheduler between sweeps.",
								"It normally sleeps exactly until the next deadline; this caps the sleep.",
								&of_naptime, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
		DefineCustomBoolVariable("order_flow.enabled",
								 "Whether the background worker escalates and reminds.",
								 NULL, &of_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
		of_shmem_init();
		of_register_launcher();
		of_install_utility_hook();
	}

	MarkGUCPrefixReserved("order_flow");
	of_catalog_init();
}

PG_FUNCTION_INFO_V1(order_flow_preloaded);

/*
 * order_flow._preloaded(): whether the library came in through
 * shared_preload_libraries (and so the background worker runs).
 */
Datum
order_flow_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(of_preloaded);
}

PG_FUNCTION_INFO_V1(order_flow_wake_scheduler);

/*
 * order_flow._wake_scheduler(deadline): a notification due at deadline was
 * opened; wake this database's scheduler at commit if it sleeps past it.
 */
Datum
order_flow_wake_scheduler(PG_FUNCTION_ARGS)
{
	if (!PG_ARGISNULL(0))
		of_note_deadline(PG_GETARG_TIMESTAMPTZ(0));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(order_flow_request_service);

/*
 * order_flow._request_service(): CREATE EXTENSION asks the launcher to
 * serve this database as soon as it commits.
 */
Datum
order_flow_request_service(PG_FUNCTION_ARGS)
{
	of_request_service();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(order_flow_worker_status);

/*
 * order_flow.worker_status(): the schedulers and the refused-attempt queue
 * as shared memory sees them.
 */
Datum
order_flow_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (of_shared == NULL)
		return (Datum) 0;
	LWLockAcquire(of_shared->lock, LW_SHARED);
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
	{
		OfSchedSlot *s = &of_shared->sched[i];
		Datum		v[7];
		bool		n[7] = {false, false, false, false, false, false, false};

		if (s->dboid == InvalidOid)
			continue;
		v[0] = ObjectIdGetDatum(s->dboid);
		v[1] = Int32GetDatum(s->pid);
		n[1] = s->pid == 0;
		v[2] = TimestampTzGetDatum(s->next_wake);
		n[2] = s->next_wake == 0 || s->next_wake == DT_NOEND;
		v[3] = Int64GetDatum((int64) s->sweeps);
		v[4] = BoolGetDatum(s->absent);
		v[5] = Int64GetDatum((int64) of_shared->refused_total);
		v[6] = Int64GetDatum((int64) of_shared->refused_dropped);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	LWLockRelease(of_shared->lock);
	return (Datum) 0;
}
