/*-------------------------------------------------------------------------
 *
 * worker/worker.c
 *	  The escalation background workers: one launcher per cluster, one
 *	  scheduler per served database.
 *
 * Launcher ("order_flow launcher"): connects to shared catalogs only,
 * lists the databases to serve (setting order_flow.database, else every
 * database that accepts connections and is not a template), and keeps one
 * scheduler running for each.  A scheduler that finds no extension in its
 * database exits and is marked absent; the database is looked at again
 * when CREATE EXTENSION there asks for service (at its commit, through the
 * launcher's latch) or every ABSENT_RECHECK.  A scheduler that dies is
 * restarted after RESTART_DELAY, so one bad moment never stops service.
 * A database named in order_flow.database that does not exist is logged
 * once and retried quietly.
 *
 * Scheduler ("order_flow scheduler"): each pass is one transaction that
 * escalates what is due (a batch at a time, SKIP LOCKED), raises due
 * reminders (once per naptime: they are hours-scale, and looking for them
 * is a scan), drains the refused-attempt queue into the table, and reads the
 * next due time; then it sleeps exactly until then (capped by
 * order_flow.naptime), woken early by a transaction that creates a nearer
 * deadline.  Once per naptime it also builds what the kpi() cache lacks
 * (order_flow.kpi_cache_refresh, a month per transaction).  All state is in tables, so a crash loses nothing: what was
 * not committed is simply done again by the next pass.
 *
 * Both start only after recovery has finished, so nothing runs on a hot
 * standby.  Memory: each pass allocates inside its transaction only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "pgtime.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#include "order_flow.h"
#include "compat.h"
#include "shmem.h"

#define RESTART_DELAY_MS	5000
#define ABSENT_RECHECK_MS	(5 * 60 * 1000)
#define LAUNCHER_NAP_MS		10000
#define KPI_MONTHS_PER_PASS	48
#define REMINDER_RESCAN_MS	(60 * 60 * 1000)
#define REPLICA_RECHECK_MS	10000

PGDLLEXPORT void of_launcher_main(Datum arg);
PGDLLEXPORT void of_scheduler_main(Datum arg);

void
of_register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "order_flow");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "of_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "order_flow launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "order_flow launcher");
	RegisterBackgroundWorker(&worker);
}

/* ---- launcher ---- */

typedef struct LauncherDb
{
	Oid			dboid;
	char		name[NAMEDATALEN];
	BackgroundWorkerHandle *handle;
	TimestampTz started;
	TimestampTz stopped;
} LauncherDb;

static LauncherDb dbs[OF_MAX_SCHEDULERS];
static int	ndbs = 0;
static List *logged_missing = NIL;

static LauncherDb *
launcher_db(Oid dboid, const char *name)
{
	for (int i = 0; i < ndbs; i++)
		if (dbs[i].dboid == dboid)
			return &dbs[i];
	if (ndbs >= OF_MAX_SCHEDULERS)
		return NULL;
	memset(&dbs[ndbs], 0, sizeof(LauncherDb));
	dbs[ndbs].dboid = dboid;
	strlcpy(dbs[ndbs].name, name, NAMEDATALEN);
	return &dbs[ndbs++];
}

/* the names of order_flow.database as a list (NIL: every database) */
static List *
setting_names(void)
{
	const OfNameList *names = of_database_names;
	List	   *result = NIL;
	const char *p;

	if (names == NULL)
		return NIL;
	p = names->names;
	for (int i = 0; i < names->n; i++)
	{
		result = lappend(result, pstrdup(p));
		p += strlen(p) + 1;
	}
	return result;
}

static bool
named_in_setting(const char *name, List *names)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * list_databases: the databases to serve, by scanning pg_database.
 */
static List *
list_databases(void)
{
	List	   *result = NIL;
	List	   *wanted = setting_names();
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	ListCell   *lc;
	MemoryContext outer = CurrentMemoryContext;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);
		bool		take;

		if (wanted != NIL)
			take = named_in_setting(NameStr(db->datname), wanted);
		else
			take = db->datallowconn && !db->datistemplate;
		if (take && db->datconnlimit != -2)
		{
			MemoryContext old = MemoryContextSwitchTo(outer);
			LauncherDb *d = launcher_db(db->oid, NameStr(db->datname));

			if (d)
				result = lappend_oid(result, d->dboid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	/* names that do not exist: log once each */
	foreach(lc, wanted)
	{
		char	   *name = (char *) lfirst(lc);
		bool		found = false;

		for (int i = 0; i < ndbs; i++)
			found |= strcmp(dbs[i].name, name) == 0 && list_member_oid(result, dbs[i].dboid);
		if (!found)
		{
			ListCell   *lc2;
			bool		logged = false;

			foreach(lc2, logged_missing)
				logged |= strcmp((char *) lfirst(lc2), name) == 0;
			if (!logged)
			{
				MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

				ereport(LOG,
						(errmsg("order_flow: database \"%s\" named in order_flow.database does not exist; will retry quietly",
								name)));
				logged_missing = lappend(logged_missing, pstrdup(name));
				MemoryContextSwitchTo(old);
			}
		}
	}
	return result;
}

static void
start_scheduler(LauncherDb *d)
{
	BackgroundWorker worker;
	MemoryContext old;
	bool		ok;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "order_flow");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "of_scheduler_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "order_flow scheduler %s", d->name);
	snprintf(worker.bgw_type, BGW_MAXLEN, "order_flow scheduler");
	worker.bgw_main_arg = ObjectIdGetDatum(d->dboid);
	worker.bgw_notify_pid = MyProcPid;
	d->started = GetCurrentTimestamp();
	old = MemoryContextSwitchTo(TopMemoryContext);	/* the handle outlives the loop */
	ok = RegisterDynamicBackgroundWorker(&worker, &d->handle);
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		d->handle = NULL;
		/* logged once per shortage, not at every retry; worker_status() shows it */
		if (of_note_no_worker(d->dboid, true))
			ereport(LOG,
					(errmsg("order_flow: could not start a scheduler for database \"%s\": no free background worker slot",
							d->name),
					 errhint("Raise max_worker_processes (now %d): order_flow needs one per database with the extension, plus one.",
							 max_worker_processes)));
	}
	else
		(void) of_note_no_worker(d->dboid, false);
}

/*
 * slot_state: is the database marked absent (its scheduler found no
 * extension), and has CREATE EXTENSION asked for service since?  A request
 * clears the absent mark; an absent mark older than ABSENT_RECHECK is
 * cleared too, so the database is looked at again now and then.
 */
static bool
slot_absent(Oid dboid, bool *requested)
{
	bool		absent = false;
	TimestampTz now = GetCurrentTimestamp();

	*requested = false;
	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < of_shared->nrequests; i++)
	{
		if (of_shared->requests[i] == dboid)
		{
			*requested = true;
			of_shared->requests[i] = of_shared->requests[--of_shared->nrequests];
			break;
		}
	}
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
	{
		OfSchedSlot *s = &of_shared->sched[i];

		if (s->dboid == dboid && s->absent)
		{
			if (*requested || TimestampDifferenceExceeds(s->absent_since, now, ABSENT_RECHECK_MS))
				s->absent = false;
			else
				absent = true;
		}
	}
	LWLockRelease(of_shared->lock);
	return absent;
}

/*
 * forget_db: a database no longer served (dropped, or left out of
 * order_flow.database) gives back its launcher entry and shared slot.
 */
static void
forget_db(int i)
{
	Oid			dboid = dbs[i].dboid;

	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	for (int k = 0; k < OF_MAX_SCHEDULERS; k++)
		if (of_shared->sched[k].dboid == dboid && of_shared->sched[k].pid == 0)
		{
			of_sched_slot_reset(&of_shared->sched[k], InvalidOid);
		}
	LWLockRelease(of_shared->lock);
	dbs[i] = dbs[--ndbs];
}

/* before_shmem_exit: the launcher's slot is free again */
static void
launcher_unregister(int code, Datum arg)
{
	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	if (of_shared->launcher_pid == MyProcPid)
	{
		of_shared->launcher_pid = 0;
		of_shared->launcher_latch = NULL;
	}
	LWLockRelease(of_shared->lock);
}

void
of_launcher_main(Datum arg)
{
	MemoryContext loop_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("order_flow launcher");

	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	/* a launcher clears its pid on exit (launcher_unregister), a crash resets shared memory */
	if (of_shared->launcher_pid != 0 && of_shared->launcher_pid != MyProcPid)
	{
		LWLockRelease(of_shared->lock);
		ereport(LOG, (errmsg("order_flow: another launcher is running; exiting")));
		proc_exit(0);
	}
	of_shared->launcher_pid = MyProcPid;
	of_shared->launcher_latch = MyLatch;
	LWLockRelease(of_shared->lock);
	before_shmem_exit(launcher_unregister, (Datum) 0);
	ereport(LOG, (errmsg("order_flow launcher started")));
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "order_flow launcher loop",
									 ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		List	   *serve;
		TimestampTz now;
		long		nap = LAUNCHER_NAP_MS;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		/* schedulers run even when disabled: they still record refused attempts */
		serve = list_databases();
		now = GetCurrentTimestamp();
		for (int i = 0; i < ndbs; i++)
		{
			LauncherDb *d = &dbs[i];
			pid_t		pid;
			bool		running = false;
			bool		requested;

			if (d->handle)
			{
				BgwHandleStatus st = GetBackgroundWorkerPid(d->handle, &pid);

				running = (st == BGWH_STARTED || st == BGWH_NOT_YET_STARTED);
				if (!running)
				{
					pfree(d->handle);
					d->handle = NULL;
					d->stopped = now;
				}
			}
			if (!list_member_oid(serve, d->dboid))
			{
				if (running)
					TerminateBackgroundWorker(d->handle);
				else
				{
					forget_db(i);
					i--;
				}
				continue;
			}
			if (running || slot_absent(d->dboid, &requested))
				continue;
			if (!requested && d->stopped != 0 &&
				!TimestampDifferenceExceeds(d->stopped, now, RESTART_DELAY_MS))
			{
				nap = Min(nap, RESTART_DELAY_MS);
				continue;
			}
			start_scheduler(d);
		}
		MemoryContextSwitchTo(TopMemoryContext);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 nap, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---- scheduler ---- */

static OfSchedSlot *my_slot = NULL;

static void
scheduler_register(Oid dboid)
{
	int			free_i = -1;

	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
	{
		OfSchedSlot *s = &of_shared->sched[i];

		if (s->dboid == dboid)
		{
			/* a scheduler clears its pid on exit (scheduler_unregister) */
			if (s->pid != 0 && s->pid != MyProcPid)
			{
				LWLockRelease(of_shared->lock);
				ereport(LOG, (errmsg("order_flow: a scheduler already serves this database; exiting")));
				proc_exit(0);
			}
			free_i = i;
			break;
		}
		if (free_i < 0 && s->dboid == InvalidOid)
			free_i = i;
	}
	if (free_i < 0)
	{
		LWLockRelease(of_shared->lock);
		ereport(LOG, (errmsg("order_flow: no free scheduler slot")));
		proc_exit(0);
	}
	my_slot = &of_shared->sched[free_i];
	my_slot->dboid = dboid;
	my_slot->pid = MyProcPid;
	my_slot->latch = MyLatch;
	my_slot->absent = false;
	my_slot->no_worker = false;
	my_slot->next_wake = DT_NOEND;
	LWLockRelease(of_shared->lock);
}

static void
scheduler_unregister(int code, Datum arg)
{
	if (my_slot == NULL)
		return;
	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	my_slot->pid = 0;
	my_slot->latch = NULL;
	LWLockRelease(of_shared->lock);
}

/* The one value of a one-row query (not read-only: a fresh snapshot). */
static Datum
spi_value(const char *sql, int nargs, Oid *types, Datum *values, bool *isnull)
{
	if (SPI_execute_with_args(sql, nargs, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "order_flow scheduler query failed: %s", sql);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, isnull);
}

/* An integer query's value; NULL counts as 0. */
static int64
spi_int(const char *sql, int nargs, Oid *types, Datum *values)
{
	bool		isnull;
	Datum		d = spi_value(sql, nargs, types, values, &isnull);

	return isnull ? 0 : DatumGetInt32(d);
}

static void
drain_refusals(void)
{
	OfRefusal	batch[64];
	int			n;
	Oid			types[9] = {TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, TEXTOID, TEXTOID};

	while ((n = of_refusal_take(MyDatabaseId, batch, lengthof(batch))) > 0)
	{
		for (int i = 0; i < n; i++)
		{
			OfRefusal  *r = &batch[i];
			Datum		v[9];
			char		nulls[9];

			memset(nulls, ' ', sizeof(nulls));
			v[0] = TimestampTzGetDatum(r->at);
			v[1] = CStringGetTextDatum(r->actor);
			v[2] = CStringGetTextDatum(r->db_user);
			v[3] = CStringGetTextDatum(r->tbl);
			v[4] = CStringGetTextDatum(r->order_key);
			v[5] = CStringGetTextDatum(r->from_state);
			v[6] = CStringGetTextDatum(r->to_state);
			v[7] = CStringGetTextDatum(r->sqlstate);
			v[8] = CStringGetTextDatum(r->reason);
			nulls[1] = r->actor[0] ? ' ' : 'n';
			nulls[2] = r->db_user[0] ? ' ' : 'n';
			nulls[3] = r->tbl[0] ? ' ' : 'n';
			nulls[4] = r->order_key[0] ? ' ' : 'n';
			nulls[5] = r->from_state[0] ? ' ' : 'n';
			nulls[6] = r->to_state[0] ? ' ' : 'n';
			if (SPI_execute_with_args("INSERT INTO order_flow.refused_attempt (attempted_at, actor, db_user,"
									  " tbl, order_key, from_state, to_state, sqlstate, reason)"
									  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
									  9, types, v, nulls, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not record refused attempt");
		}
	}
}

/*
 * How much order tracking has changed, as the cumulative statistics count
 * it: rows of order_flow.tracked_order inserted, updated and deleted, as
 * flushed so far; own: this transaction's not yet flushed.  -1 when
 * counting is off (track_counts), so every look must scan.  Reading the
 * counts takes no lock and costs the transition path nothing; a change
 * shows up once its backend has flushed its statistics (within seconds).
 */
static int64
tracking_changes(bool own)
{
	bool		isnull;
	Datum		d;

	d = spi_value(own ?
				  "SELECT pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid)"
				  "    + pg_catalog.pg_stat_get_xact_tuples_updated(c.oid)"
				  "    + pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid)"
				  " FROM pg_catalog.pg_class c"
				  " WHERE c.oid = 'order_flow.tracked_order'::pg_catalog.regclass" :
				  "SELECT CASE WHEN pg_catalog.current_setting('track_counts')::boolean"
				  " THEN pg_catalog.pg_stat_get_tuples_inserted(c.oid)"
				  "    + pg_catalog.pg_stat_get_tuples_updated(c.oid)"
				  "    + pg_catalog.pg_stat_get_tuples_deleted(c.oid) END"
				  " FROM pg_catalog.pg_class c"
				  " WHERE c.oid = 'order_flow.tracked_order'::pg_catalog.regclass",
				  0, NULL, NULL, &isnull);
	return isnull ? (own ? 0 : -1) : DatumGetInt64(d);
}

/* The earliest stale_after of any tracked order (DT_NOEND: none). */
static TimestampTz
earliest_stale(void)
{
	bool		isnull;
	Datum		d = spi_value("SELECT pg_catalog.min(stale_after) FROM order_flow.tracked_order",
							  0, NULL, NULL, &isnull);

	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/*
 * in_transaction: run fn(arg) in a transaction of its own (READ COMMITTED:
 * the scheduler pins its default), with SPI connected and a snapshot
 * pushed.  An error is logged and rolled back (false), leaving the
 * rest of the pass alone.
 */
static bool
in_transaction(const char *activity, void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, activity);
		fn(arg);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		ok = false;
	}
	PG_END_TRY();
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/* Is order_flow.name(args) there (the schema may be older than the library)? */
static bool
have_function(const char *name, int nargs, Oid *argtypes)
{
	return OidIsValid(LookupFuncName(list_make2(makeString("order_flow"), makeString(pstrdup(name))),
									 nargs, argtypes, true));
}

/* one month of the kpi() cache; *(bool *) arg: one was built */
static void
kpi_refresh_step(void *arg)
{
	Oid			argtypes[1] = {INT4OID};

	*(bool *) arg = have_function("kpi_cache_refresh", 1, argtypes) &&
		spi_int("SELECT order_flow.kpi_cache_refresh(1)", 0, NULL, NULL) > 0;
}

/*
 * Keep the kpi() cache (order_flow.kpi_month, from 1.1) built: one month
 * per transaction, so the lock on kpi_dirty it takes is brief.
 */
static void
refresh_kpi_cache(void)
{
	for (int round = 0; round < KPI_MONTHS_PER_PASS; round++)
	{
		bool		built = false;

		if (!in_transaction("order_flow: kpi cache refresh", kpi_refresh_step, &built) || !built)
			break;
		CHECK_FOR_INTERRUPTS();
	}
}

typedef struct FoldStep
{
	bool		catch_up;
	TimestampTz until;			/* the fold's position after it */
} FoldStep;

static void
fold_step(void *arg)
{
	FoldStep   *f = (FoldStep *) arg;
	Oid			argtypes[2] = {BOOLOID, BOOLOID};
	Datum		v[1] = {BoolGetDatum(f->catch_up)};
	bool		isnull;
	Datum		d;

	f->until = 0;
	if (!have_function("metrics_fold", 2, argtypes))
		return;
	/* never queued behind a fold someone else runs */
	(void) spi_value("SELECT order_flow.metrics_fold($1, false)", 1, argtypes, v, &isnull);
	d = spi_value("SELECT folded_until FROM order_flow.fold_progress", 0, NULL, NULL, &isnull);
	f->until = isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * Fold committed events into the metrics rollup (order_flow.metrics_fold(),
 * from 1.2); catch_up also folds every order behind its watermark.
 * Returns the fold's position (0 when the function is not there or the
 * fold failed).
 */
static TimestampTz
fold_metrics(bool catch_up)
{
	FoldStep	f = {catch_up, 0};

	if (!in_transaction("order_flow: metrics fold", fold_step, &f))
		return 0;
	return f.until;
}

/*
 * What a scheduler remembers between passes: when each duty is next due.
 * Everything else is in tables.
 */
typedef struct SchedulerState
{
	TimestampTz remind_due;		/* next look for stale orders */
	TimestampTz next_stale;		/* earliest stale_after seen at the last look */
	TimestampTz last_look;		/* when stale orders were last looked for */
	int64		seen_changes;	/* tracked_order changes counted then (-1: none) */
	TimestampTz kpi_due;		/* next kpi() cache refresh */
	TimestampTz catch_up_due;	/* next full metrics catch-up (at start, then hourly) */
	long		fold_delay;		/* nap while events wait to be folded (ms) */
	TimestampTz folded_until;	/* the fold's position */
	bool		replica;		/* notifications arrive by logical replication */
	TimestampTz replica_recheck;	/* when to look at the subscriptions again */
	TimestampTz last_fold;		/* when the fold last ran */
	bool		zone_changed;	/* the database's business time zone changed */
} SchedulerState;

/*
 * Do this database's notifications arrive by logical replication (an
 * enabled subscription: a subscriber promoted by disabling it escalates
 * again)?  Then the publisher escalates and reminds, and so does not this
 * scheduler (it would change replicated rows and fork their history); it
 * still folds the replicated events into the local metrics, at every
 * naptime, since replicated rows do not ask for a fold.
 */
static bool
notifications_replicated(void)
{
	bool		isnull;
	Datum		d = spi_value("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription_rel r"
							  " JOIN pg_catalog.pg_subscription s ON s.oid OPERATOR(pg_catalog.=) r.srsubid"
							  " WHERE r.srrelid OPERATOR(pg_catalog.=) 'order_flow.notification'::pg_catalog.regclass"
							  "   AND s.subenabled)",
							  0, NULL, NULL, &isnull);

	return !isnull && DatumGetBool(d);
}

/*
 * Duty: escalate what is due, one batch.  Returns the number escalated
 * (of_batch_size or more: there may be more).
 */
static int64
escalate(void)
{
	Oid			types[1] = {INT4OID};
	Datum		v[1] = {Int32GetDatum(of_batch_size)};

	return spi_int(psprintf("SELECT %s._escalate_notifications(pg_catalog.clock_timestamp(), $1)", of_internal_schema()),
				   1, types, v);
}

/*
 * Duty: raise due reminders.  Reminders are hours-scale: looked for at most
 * once per naptime, and only when order tracking changed since the last
 * look (by its statistics), the earliest stale_after then seen has come, or
 * an hour passed.  The counts are read before the scan's snapshot, so a
 * change they miss is seen by the scan or counted at the next look; the
 * scheduler's own changes are added in.  Returns the number raised, and
 * sets *more when a full batch was raised.
 */
static int64
remind(SchedulerState *st, TimestampTz pass_start, bool *more)
{
	Oid			types[1] = {INT4OID};
	Datum		v[1] = {Int32GetDatum(of_batch_size)};
	TimestampTz next_look = TimestampTzPlusMilliseconds(pass_start, (int64) of_naptime * 1000);
	int64		changes;
	int64		n;

	if (st->remind_due > pass_start)
		return 0;
	changes = tracking_changes(false);
	if (changes >= 0 && changes == st->seen_changes && st->next_stale > pass_start &&
		pass_start < TimestampTzPlusMilliseconds(st->last_look, REMINDER_RESCAN_MS))
	{
		st->remind_due = next_look;
		return 0;
	}
	n = spi_int(psprintf("SELECT %s._raise_reminders(pg_catalog.clock_timestamp(), $1)", of_internal_schema()),
				1, types, v);
	st->next_stale = DT_NOBEGIN;
	st->seen_changes = -1;
	if (n >= of_batch_size)
	{
		*more = true;
		return n;
	}
	st->remind_due = next_look;
	st->last_look = pass_start;
	if (changes >= 0)
	{
		st->next_stale = earliest_stale();
		st->seen_changes = changes + tracking_changes(true);
	}
	return n;
}

/* The earliest escalation due (DT_NOEND: none); a fresh snapshot, which sees this pass's own. */
static TimestampTz
next_due(void)
{
	bool		isnull;
	Datum		d = spi_value(psprintf("SELECT %s._next_due()", of_internal_schema()), 0, NULL, NULL, &isnull);

	return isnull ? DT_NOEND : DatumGetTimestampTz(d);
}

/*
 * Duty: the metrics fold, whenever a commit asked for it since the fold's
 * position, with a full catch-up at start and hourly.  While the position
 * cannot pass a request (an old transaction still runs), the naps back off
 * from OF_FOLD_DELAY_MS to the naptime.
 */
static void
fold(SchedulerState *st, TimestampTz pass_start)
{
	uint64		requested = pg_atomic_read_u64(&my_slot->fold_requested);
	bool		catch_up = st->catch_up_due <= pass_start || my_slot->catch_up_requested;
	TimestampTz before = st->folded_until;

	if (!catch_up && (TimestampTz) requested < st->folded_until)
		return;
	my_slot->catch_up_requested = false;
	st->folded_until = fold_metrics(catch_up);
	if (catch_up)
		st->catch_up_due = TimestampTzPlusMilliseconds(pass_start, st->replica ?
													   (int64) of_naptime * 1000 : REMINDER_RESCAN_MS);
	st->fold_delay = st->folded_until > before ? OF_FOLD_DELAY_MS :
		Min(st->fold_delay * 2, (long) of_naptime * 1000);
}

/*
 * Has the business time zone a new session of this database would start
 * with changed since this scheduler connected?  That value is the
 * database's own (ALTER DATABASE ... SET), else every database's (ALTER
 * ROLE ALL SET), else the server's; the scheduler's is compared with it,
 * by canonical name, so a respelling is no change.  When neither catalogue
 * value is there any more but the scheduler's came from one, it was reset.
 * *(SchedulerState *) arg: zone_changed.
 */
static void
zone_step(void *arg)
{
	SchedulerState *st = (SchedulerState *) arg;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(MyDatabaseId)};
	bool		isnull;
	Datum		d;
	char	   *want = NULL;
	char	   *source;

	if (SPI_execute_with_args(
			"SELECT (SELECT pg_catalog.substr(c, pg_catalog.strpos(c, '=') + 1)"
			"          FROM pg_catalog.pg_db_role_setting s, pg_catalog.unnest(s.setconfig) c"
			"         WHERE s.setrole = 0 AND s.setdatabase IN ($1, 0)"
			"           AND pg_catalog.split_part(c, '=', 1) = 'order_flow.business_time_zone'"
			"         ORDER BY s.setdatabase DESC LIMIT 1),"
			"       (SELECT g.source FROM pg_catalog.pg_settings g"
			"         WHERE g.name = 'order_flow.business_time_zone')",
			1, types, values, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "order_flow scheduler could not read the business time zone's settings");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		want = TextDatumGetCString(d);
	source = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (want != NULL)
	{
		pg_tz	   *tz = pg_tzset(want);
		const char *canonical = tz ? pg_get_timezone_name(tz) : NULL;
		const char *have = GetConfigOption("order_flow.business_time_zone", true, false);

		st->zone_changed = canonical != NULL && have != NULL && strcmp(canonical, have) != 0;
	}
	else
		st->zone_changed = source != NULL &&
			(strcmp(source, "database") == 0 || strcmp(source, "global") == 0);
}

/*
 * Duty: the kpi() cache is month-scale, looked after once per naptime, in
 * the business time zone.  When a DBA has changed the database's zone
 * since this scheduler connected, it exits instead (the launcher starts a
 * fresh one after RESTART_DELAY_MS, which connects with the new value, as
 * any new session does): a cache built in the old zone would never be
 * served.
 */
static void
keep_kpi_cache(SchedulerState *st, TimestampTz pass_start)
{
	if (!of_enabled || st->kpi_due > pass_start)
		return;
	if (in_transaction("order_flow: business time zone", zone_step, st) && st->zone_changed)
	{
		ereport(LOG,
				(errmsg("order_flow: order_flow.business_time_zone of this database was changed; "
						"the scheduler restarts to apply it")));
		proc_exit(0);
	}
	refresh_kpi_cache();
	st->kpi_due = TimestampTzPlusMilliseconds(pass_start, (int64) of_naptime * 1000);
}

/* The extension is gone from this database: mark the slot absent and exit. */
static void
exit_absent(void)
{
	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	my_slot->absent = true;
	my_slot->absent_since = GetCurrentTimestamp();
	LWLockRelease(of_shared->lock);
	ereport(DEBUG1, (errmsg("order_flow: extension not installed in this database; scheduler exits")));
	proc_exit(0);
}

/*
 * How long to sleep after a pass: until the next escalation or reminder is
 * due, capped by the naptime, shorter while events wait to be folded, and
 * never a busy loop over work that is due but could not be done.
 */
static long
nap_after(SchedulerState *st, TimestampTz pass_start, TimestampTz next, bool more, int64 done)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz cap = TimestampTzPlusMilliseconds(now, (int64) of_naptime * 1000);
	long		timeout;

	if (more)
		return 0;
	if (!of_enabled || next > cap)
		next = cap;
	if (of_enabled && !st->replica && st->remind_due < next)
		next = Max(st->remind_due, now);
	timeout = next <= now ? 0 : TimestampDifferenceMilliseconds(now, next);
	if ((TimestampTz) pg_atomic_read_u64(&my_slot->fold_requested) >= st->folded_until &&
		timeout > st->fold_delay)
		timeout = st->fold_delay;
	/* due before this pass began yet not done (locked, failing): do not spin */
	if (timeout == 0 && done == 0 && next <= pass_start)
		timeout = 1000;
	return timeout;
}

void
of_scheduler_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	SchedulerState st = {0};

	st.next_stale = DT_NOBEGIN;
	st.seen_changes = -1;
	st.fold_delay = OF_FOLD_DELAY_MS;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("order_flow scheduler");
	SetConfigOption("order_flow.actor", "order_flow.scheduler", PGC_USERSET, PGC_S_SESSION);
	SetConfigOption("application_name", "order_flow scheduler", PGC_USERSET, PGC_S_SESSION);
	/* each statement its own snapshot, whatever the database's default says */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * In a deadlock with a session's DDL (DROP EXTENSION takes the
	 * extension's tables one by one), the scheduler is the one to give way:
	 * it looks for deadlocks sooner, so it is the one aborted, and its next
	 * pass does the work again.
	 */
	SetConfigOption("deadlock_timeout", "100", PGC_SUSET, PGC_S_OVERRIDE);
	scheduler_register(dboid);
	before_shmem_exit(scheduler_unregister, (Datum) 0);

	for (;;)
	{
		TimestampTz next = DT_NOEND;
		TimestampTz pass_start;
		bool		more = false;
		int64		done = 0;
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* escalation, reminders, refusals and the next due time: one transaction */
		pass_start = GetCurrentTimestamp();
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (!OidIsValid(get_extension_oid("order_flow", true)))
		{
			CommitTransactionCommand();
			exit_absent();
		}
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "order_flow: escalation sweep");
		/* subscriptions change rarely: looked at every few seconds, not every pass */
		if (pass_start >= st.replica_recheck && notifications_replicated() != st.replica)
		{
			st.replica = !st.replica;
			st.catch_up_due = 0;	/* replicated events are folded by catch-ups */
			ereport(LOG,
					(errmsg(st.replica ?
							"order_flow: this database's notifications arrive by logical replication; its scheduler leaves escalation and reminders to the publisher" :
							"order_flow: this database's notifications no longer arrive by logical replication; its scheduler escalates and reminds again")));
		}
		if (pass_start >= st.replica_recheck)
			st.replica_recheck = TimestampTzPlusMilliseconds(pass_start,
															 Min((int64) of_naptime * 1000, REPLICA_RECHECK_MS));
		if (of_enabled && !st.replica)
		{
			done = escalate();
			more = done >= of_batch_size;
			done += remind(&st, pass_start, &more);
		}
		drain_refusals();
		next = st.replica ? DT_NOEND : next_due();
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();

		/*
		 * Each in transactions of its own.  While escalations are still
		 * due (a burst: the batch was full) they come first: the fold and
		 * the kpi() cache wait until the burst is through, or a naptime.
		 */
		if (!more || TimestampDifferenceExceeds(st.last_fold, pass_start, (int) of_naptime * 1000))
		{
			fold(&st, pass_start);
			keep_kpi_cache(&st, pass_start);
			st.last_fold = pass_start;
		}
		pgstat_report_stat(true);
		pgstat_report_activity(STATE_IDLE, NULL);

		timeout = nap_after(&st, pass_start, next, more, done);
		LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
		{
			/* a deadline committed during this pass shortens the nap */
			TimestampTz now = GetCurrentTimestamp();
			TimestampTz wake = of_plan_nap(my_slot, TimestampTzPlusMilliseconds(now, timeout));

			timeout = wake <= now ? 0 : Min(timeout, (long) ((wake - now + 999) / 1000));
		}
		my_slot->sweeps++;
		my_slot->last_sweep = GetCurrentTimestamp();
		LWLockRelease(of_shared->lock);

		if (timeout > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 timeout, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
}

/* ---- DROP DATABASE: the scheduler steps aside ---- */

static ProcessUtility_hook_type prev_process_utility = NULL;

/*
 * A scheduler connected to a database would make DROP DATABASE fail with
 * "being accessed by other users".  Before a DROP DATABASE that will go
 * ahead -- run at top level outside a transaction block, by the owner (or
 * a superuser), of a database that exists -- its scheduler is marked
 * absent (so the launcher does not restart it) and asked to exit; we wait
 * for it briefly, as DROP DATABASE itself does for other sessions.  A DROP
 * that is refused anyway (no right, inside a transaction block) leaves the
 * scheduler alone; one that fails later (other sessions connected) gives
 * the database back to the launcher, which starts a scheduler again.
 */
static void
set_absent(Oid dboid, bool absent, pid_t *pid)
{
	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
	{
		OfSchedSlot *s = &of_shared->sched[i];

		if (s->dboid == dboid)
		{
			s->absent = absent;
			s->absent_since = absent ? GetCurrentTimestamp() : 0;
			if (pid)
				*pid = s->pid;
		}
	}
	if (!absent && of_shared->launcher_latch)
		SetLatch(of_shared->launcher_latch);
	LWLockRelease(of_shared->lock);
}

/* the pid of the scheduler serving dboid (0: none) */
static pid_t
scheduler_pid(Oid dboid)
{
	pid_t		pid = 0;

	LWLockAcquire(of_shared->lock, LW_SHARED);
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
		if (of_shared->sched[i].dboid == dboid)
			pid = of_shared->sched[i].pid;
	LWLockRelease(of_shared->lock);
	return pid;
}

static void
of_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				   ProcessUtilityContext context, ParamListInfo params,
				   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Oid			dropping = InvalidOid;

	of_check_drop_extension(pstmt->utilityStmt);
	if (of_shared != NULL && IsA(pstmt->utilityStmt, DropdbStmt) &&
		!IsInTransactionBlock(context == PROCESS_UTILITY_TOPLEVEL))
	{
		DropdbStmt *stmt = (DropdbStmt *) pstmt->utilityStmt;
		Oid			dboid = get_database_oid(stmt->dbname, true);
		pid_t		pid = 0;

		if (OidIsValid(dboid) && dboid != MyDatabaseId &&
			of_database_ownercheck(dboid, GetUserId()))
		{
			dropping = dboid;
			set_absent(dboid, true, &pid);
			if (pid != 0 && kill(pid, SIGTERM) == 0)
			{
				/* gone once it has cleared its slot (scheduler_unregister) */
				for (int i = 0; i < 50 && scheduler_pid(dboid) == pid; i++)
				{
					CHECK_FOR_INTERRUPTS();
					pg_usleep(100 * 1000L);
				}
			}
		}
	}
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
								 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
									queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		/* the database is still there: serve it again */
		if (OidIsValid(dropping))
			set_absent(dropping, false, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

void
of_install_utility_hook(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = of_process_utility;
}
