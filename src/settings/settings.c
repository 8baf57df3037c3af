/*-------------------------------------------------------------------------
 *
 * settings/settings.c
 *	  Module initialisation: settings, shared memory and the launcher.
 *
 * Every setting exists whenever the library is loaded, preloaded or not,
 * so SHOW and pg_settings always answer; a value that can be wrong is
 * checked by a check hook (order_flow.database's list syntax; the numbers
 * by their ranges).  The shared memory, the launcher and the DROP
 * DATABASE hook exist only when the library comes in through
 * shared_preload_libraries.
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
#include "utils/varlena.h"

#include "order_flow.h"
#include "compat.h"
#include "shmem.h"

PG_MODULE_MAGIC;

char	   *of_actor_setting = NULL;
char	   *of_reason_setting = NULL;
char	   *of_context_setting = NULL;
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

/* order_flow.database, parsed once by its check hook (NULL or n = 0: every database) */
const OfNameList *of_database_names = NULL;

/*
 * check_database_list: order_flow.database must be a list of database
 * names (identifiers, comma-separated).  The parsed names travel to the
 * assign hook as the setting's extra: one block, so GUC can free it.
 */
static bool
check_database_list(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval ? *newval : "");
	List	   *names = NIL;
	ListCell   *lc;
	Size		size = offsetof(OfNameList, names);
	OfNameList *parsed;
	char	   *p;

	if (!SplitIdentifierString(raw, ',', &names))
	{
		GUC_check_errdetail("List syntax is invalid.");
		pfree(raw);
		list_free(names);
		return false;
	}
	foreach(lc, names)
		size += strlen((char *) lfirst(lc)) + 1;
	parsed = of_guc_malloc(size);
	if (parsed == NULL)
	{
		pfree(raw);
		list_free(names);
		return false;
	}
	parsed->n = list_length(names);
	p = parsed->names;
	foreach(lc, names)
	{
		strcpy(p, (char *) lfirst(lc));
		p += strlen(p) + 1;
	}
	pfree(raw);
	list_free(names);
	*extra = parsed;
	return true;
}

static void
assign_database_list(const char *newval, void *extra)
{
	of_database_names = (const OfNameList *) extra;
}

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
	DefineCustomStringVariable("order_flow.transition_context",
							   "What transition() passes to a Citus worker's transition trigger (internal).",
							   "Set with SET LOCAL by transition() and import_transition() for a distributed table; "
							   "the trigger checks the caller's rights as on one node.",
							   &of_context_setting, "", PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE, NULL, NULL, NULL);
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
	of_define_business_tz();

	/*
	 * The background worker's settings exist in every session, so that SHOW
	 * and pg_settings answer whether or not the library is preloaded; they
	 * are read from the server configuration (a reload applies them).
	 */
	DefineCustomStringVariable("order_flow.database",
							   "Databases the escalation worker serves (comma-separated; empty: every database with the extension).",
							   "A reload applies a change; a list that does not parse is refused.",
							   &of_database_setting, "", PGC_SIGHUP, GUC_LIST_INPUT,
							   check_database_list, assign_database_list, NULL);
	DefineCustomIntVariable("order_flow.naptime",
							"Longest sleep of the escalation scheduler between sweeps.",
							"It normally sleeps exactly until the next deadline; this caps the sleep.",
							&of_naptime, 60, 1, 86400, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("order_flow.enabled",
							 "Whether the background worker escalates and reminds.",
							 NULL, &of_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);

	if (process_shared_preload_libraries_in_progress)
	{
		of_preloaded = true;
		of_shmem_init();
		of_register_launcher();
		of_install_utility_hook();
	}

	MarkGUCPrefixReserved("order_flow");
	of_catalog_init();
}

PG_FUNCTION_INFO_V1(order_flow_library_version);

/* _order_flow._library_version(): the version this library was built as. */
Datum
order_flow_library_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(OF_VERSION));
}

PG_FUNCTION_INFO_V1(order_flow_preloaded);

/*
 * _order_flow._preloaded(): whether the library came in through
 * shared_preload_libraries (and so the background worker runs).
 */
Datum
order_flow_preloaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(of_preloaded);
}

PG_FUNCTION_INFO_V1(order_flow_wake_scheduler);

/*
 * _order_flow._wake_scheduler(deadline): a notification due at deadline was
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
 * _order_flow._request_service(): CREATE EXTENSION asks the launcher to
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

	/*
	 * 7 columns before 1.2, 9 since (no_worker_slot, last_sweep): the row is
	 * formed by the caller's result descriptor, which reads the first 7 or
	 * all 9.
	 */
	InitMaterializedSRF(fcinfo, 0);
	if (of_shared == NULL)
		return (Datum) 0;
	LWLockAcquire(of_shared->lock, LW_SHARED);
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
	{
		OfSchedSlot *s = &of_shared->sched[i];
		Datum		v[9];
		bool		n[9] = {false, false, false, false, false, false, false, false, false};

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
		v[7] = BoolGetDatum(s->no_worker);
		v[8] = TimestampTzGetDatum(s->last_sweep);
		n[8] = s->last_sweep == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	LWLockRelease(of_shared->lock);
	return (Datum) 0;
}
