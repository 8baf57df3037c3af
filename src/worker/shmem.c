/*-------------------------------------------------------------------------
 *
 * worker/shmem.c
 *	  Shared memory of the preloaded library: the scheduler registry that
 *	  lets a transaction wake the escalation worker of its database, and the
 *	  bounded queue of refused transition attempts.
 *
 * Locking: one LWLock (tranche "order_flow") protects everything here.
 * Critical sections only copy fixed-size structs.  A backend never sets a
 * latch while holding the lock.
 *
 * Waking: a transaction that opens a notification whose deadline is
 * earlier than its database scheduler's planned wake-up asks, at commit
 * (never before: an uncommitted deadline is invisible to the worker), for
 * the scheduler's latch to be set.  CREATE EXTENSION asks the launcher to
 * serve its database the same way.
 *
 * Folding: a transaction that wrote events to fold asynchronously records,
 * at commit, its commit time in its scheduler's fold_requested (an atomic
 * maximum, no lock), and wakes the scheduler only when it sleeps longer
 * than OF_FOLD_DELAY_MS; a scheduler with folding to do naps no longer
 * than that, so under load no latch is set at all.
 *
 * Refusals: a refused transition rolls back with its transaction, so the
 * trigger copies it here first; the database's scheduler drains the queue
 * into order_flow.refused_attempt.  The queue is shared by every database,
 * fairly: when it is full, an attempt evicts the oldest queued attempt of
 * the database holding the most -- unless that is its own database, or no
 * other database holds more than it would; then the new attempt is
 * dropped.  So a database whose scheduler is stopped can fill the queue,
 * yet never pushes out another database's attempts.  Evicted and dropped
 * attempts are counted as dropped.  Without the preload none of this
 * exists and all functions here are no-ops.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "order_flow.h"
#include "shmem.h"

OfShared   *of_shared = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static bool wake_pending = false;
static bool fold_pending = false;
static bool catch_up_pending = false;

static OfSchedSlot *my_slot(void);
static TimestampTz wake_at = 0;
static bool launcher_request_pending = false;
static bool xact_callback_registered = false;

static void
of_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(OfShared)));
	RequestNamedLWLockTranche("order_flow", 1);
}

static void
of_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	of_shared = ShmemInitStruct("order_flow", sizeof(OfShared), &found);
	if (!found)
	{
		memset(of_shared, 0, sizeof(OfShared));
		of_shared->lock = &(GetNamedLWLockTranche("order_flow"))->lock;
		for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
			of_sched_slot_reset(&of_shared->sched[i], InvalidOid);
	}
	LWLockRelease(AddinShmemInitLock);
}

void
of_shmem_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = of_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = of_shmem_startup;
}

/* ---- waking at commit ---- */

static void
wake_xact_callback(XactEvent event, void *arg)
{
	Latch	   *sched = NULL;
	Latch	   *launcher = NULL;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	if (event == XACT_EVENT_COMMIT && of_shared && fold_pending)
	{
		TimestampTz now = GetCurrentTimestamp();
		OfSchedSlot *s = my_slot();

		if (s != NULL)
		{
			uint64		seen = pg_atomic_read_u64(&s->fold_requested);

			if (catch_up_pending)
				s->catch_up_requested = true;

			while (seen < (uint64) now &&
				   !pg_atomic_compare_exchange_u64(&s->fold_requested, &seen, (uint64) now))
				;
			/* an unlocked read: a scheduler about to nap is woken by the next commit */
			if (s->next_wake > TimestampTzPlusMilliseconds(now, OF_FOLD_DELAY_MS))
				of_note_deadline(TimestampTzPlusMilliseconds(now, OF_FOLD_DELAY_MS));
		}
	}
	fold_pending = false;
	catch_up_pending = false;
	if (event == XACT_EVENT_COMMIT && of_shared && wake_pending)
	{
		/*
		 * Note the deadline first, then look at the scheduler's plan: a
		 * scheduler that planned its nap before this note sees it when it
		 * plans the next (of_plan_nap), one that plans after it is seen
		 * here below -- so no deadline waits a whole naptime unseen.
		 */
		OfSchedSlot *s = my_slot();

		if (s != NULL)
		{
			uint64		seen = pg_atomic_read_u64(&s->noted_wake);

			while (seen > (uint64) wake_at &&
				   !pg_atomic_compare_exchange_u64(&s->noted_wake, &seen, (uint64) wake_at))
				;
		}
	}
	if (event == XACT_EVENT_COMMIT && of_shared && wake_pending && !launcher_request_pending)
	{
		bool		needed = false;

		/* the common case: the scheduler already wakes in time */
		LWLockAcquire(of_shared->lock, LW_SHARED);
		for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
			if (of_shared->sched[i].dboid == MyDatabaseId && of_shared->sched[i].pid != 0 &&
				wake_at < of_shared->sched[i].next_wake)
				needed = true;
		LWLockRelease(of_shared->lock);
		if (!needed)
			wake_pending = false;
	}
	if (event == XACT_EVENT_COMMIT && of_shared && (wake_pending || launcher_request_pending))
	{
		LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
		for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
		{
			OfSchedSlot *s = &of_shared->sched[i];

			if (s->dboid == MyDatabaseId && s->pid != 0)
			{
				if (wake_pending && wake_at < s->next_wake)
				{
					sched = s->latch;
					s->next_wake = wake_at;
				}
				if (launcher_request_pending)
					s->absent = false;
			}
		}
		if (launcher_request_pending)
		{
			bool		listed = false;

			for (int i = 0; i < of_shared->nrequests; i++)
				listed |= of_shared->requests[i] == MyDatabaseId;
			if (!listed && of_shared->nrequests < OF_MAX_SCHEDULERS)
				of_shared->requests[of_shared->nrequests++] = MyDatabaseId;
			launcher = of_shared->launcher_latch;
		}
		LWLockRelease(of_shared->lock);
		if (sched)
			SetLatch(sched);
		if (launcher)
			SetLatch(launcher);
	}
	wake_pending = false;
	launcher_request_pending = false;
	wake_at = 0;
}

/*
 * my_slot: this database's scheduler slot, or NULL.  Read without the lock:
 * slots are reused only by the same database's schedulers.
 */
static OfSchedSlot *
my_slot(void)
{
	static int	hint = -1;

	if (hint >= 0 && of_shared->sched[hint].dboid == MyDatabaseId)
		return &of_shared->sched[hint];
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
		if (of_shared->sched[i].dboid == MyDatabaseId)
		{
			hint = i;
			return &of_shared->sched[i];
		}
	return NULL;
}

static void
ensure_callback(void)
{
	if (!xact_callback_registered)
	{
		RegisterXactCallback(wake_xact_callback, NULL);
		xact_callback_registered = true;
	}
}

/*
 * of_note_deadline: this transaction opened a notification due at dl.
 */
void
of_note_deadline(TimestampTz dl)
{
	if (of_shared == NULL)
		return;
	ensure_callback();
	if (!wake_pending || dl < wake_at)
		wake_at = dl;
	wake_pending = true;
}

/*
 * of_request_service: at commit, ask the launcher to serve this database.
 */
void
of_request_service(void)
{
	int			needed;

	if (of_shared == NULL)
		return;
	ensure_callback();
	launcher_request_pending = true;
	needed = of_worker_shortage();
	if (needed > 0)
		ereport(WARNING,
				(errmsg("order_flow: this database may get no scheduler: with it, order_flow needs %d background workers, and max_worker_processes is %d",
						needed, max_worker_processes),
				 errdetail("One scheduler per database with the extension, plus one launcher; parallel query and logical replication draw on the same pool."),
				 errhint("Raise max_worker_processes (a restart) to at least %d plus what parallel query and replication use; until then notifications of this database are not escalated.",
						 needed)));
}

/*
 * of_scheduler_serves: does a scheduler serve this database now?  (An
 * unlocked read; a scheduler that just died leaves the events unfolded
 * until it is back, which is when they are folded.)
 */
bool
of_scheduler_serves(void)
{
	OfSchedSlot *s;

	if (of_shared == NULL)
		return false;
	s = my_slot();
	return s != NULL && s->pid != 0 && !s->absent;
}

/*
 * of_fold_request: this transaction wrote events for the scheduler to fold
 * (catch_up: rows the fold's window may not show it, written by SQL).
 */
void
of_fold_request(bool catch_up)
{
	if (of_shared == NULL)
		return;
	ensure_callback();
	fold_pending = true;
	catch_up_pending |= catch_up;
}

/*
 * of_plan_nap: the scheduler of slot means to sleep until planned; returns
 * when it should wake, the earliest deadline noted by commits since its
 * last plan taken into account, and publishes that as its next wake.  The
 * caller holds of_shared->lock exclusively.
 */
TimestampTz
of_plan_nap(OfSchedSlot *slot, TimestampTz planned)
{
	TimestampTz noted;

	slot->next_wake = planned;
	pg_memory_barrier();
	noted = (TimestampTz) pg_atomic_exchange_u64(&slot->noted_wake, (uint64) DT_NOEND);
	if (noted < planned)
		slot->next_wake = noted;
	return slot->next_wake;
}

/* of_sched_slot_reset: an empty registry slot for dboid (InvalidOid: free) */
void
of_sched_slot_reset(OfSchedSlot *slot, Oid dboid)
{
	memset(slot, 0, sizeof(OfSchedSlot));
	pg_atomic_init_u64(&slot->fold_requested, 0);
	pg_atomic_init_u64(&slot->noted_wake, (uint64) DT_NOEND);
	slot->dboid = dboid;
	slot->next_wake = DT_NOEND;
}

/*
 * of_note_no_worker: the launcher could (not) start a scheduler for dboid
 * for want of a background worker slot; worker_status() shows it.  Takes
 * a registry slot for the database if it has none (and one is free).
 * Returns whether that changed what was noted.
 */
bool
of_note_no_worker(Oid dboid, bool no_worker)
{
	OfSchedSlot *slot = NULL;
	bool		changed = false;

	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < OF_MAX_SCHEDULERS && slot == NULL; i++)
		if (of_shared->sched[i].dboid == dboid)
			slot = &of_shared->sched[i];
	for (int i = 0; i < OF_MAX_SCHEDULERS && slot == NULL && no_worker; i++)
		if (of_shared->sched[i].dboid == InvalidOid)
		{
			slot = &of_shared->sched[i];
			of_sched_slot_reset(slot, dboid);
		}
	if (slot != NULL && slot->no_worker != no_worker)
	{
		slot->no_worker = no_worker;
		changed = true;
	}
	LWLockRelease(of_shared->lock);
	return changed;
}

/*
 * of_worker_shortage: with how many other databases served, would one
 * more scheduler (and the launcher) still fit in max_worker_processes?
 * Returns the number of background workers order_flow would then need, or
 * 0 when they fit.  (Parallel query and logical replication draw on the
 * same pool: this only looks at order_flow's own.)
 */
int
of_worker_shortage(void)
{
	int			served = 0;
	bool		mine = false;

	if (of_shared == NULL)
		return 0;
	LWLockAcquire(of_shared->lock, LW_SHARED);
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
	{
		OfSchedSlot *s = &of_shared->sched[i];

		if (s->dboid == MyDatabaseId)
			mine = s->pid != 0;
		else if (s->pid != 0 || s->no_worker)
			served++;
	}
	LWLockRelease(of_shared->lock);
	if (mine || served + 2 <= max_worker_processes)
		return 0;
	return served + 2;
}

/* ---- refused attempts ---- */

/*
 * refusal_victim: the queue is full and database dboid wants a slot: the
 * slot of the oldest attempt of the database that holds the most, when
 * that database holds more than dboid would with the new attempt; else -1
 * (the new attempt is the one dropped).  Caller holds the lock.
 */
static int
refusal_victim(Oid dboid)
{
	/* per database, how many attempts it holds: open addressing, twice the slots */
	Oid			dbs[OF_REFUSAL_SLOTS * 2];
	int			counts[OF_REFUSAL_SLOTS * 2];
	int			mine = 0;
	int			most = -1;
	int			victim = -1;
	TimestampTz oldest = DT_NOEND;

	memset(dbs, 0, sizeof(dbs));
	for (int i = 0; i < OF_REFUSAL_SLOTS; i++)
	{
		Oid			db = of_shared->refusals[i].dboid;
		uint32		h = (uint32) db % lengthof(dbs);

		while (dbs[h] != InvalidOid && dbs[h] != db)
			h = (h + 1) % lengthof(dbs);
		if (dbs[h] == InvalidOid)
		{
			dbs[h] = db;
			counts[h] = 0;
		}
		counts[h]++;
	}
	for (int h = 0; h < lengthof(dbs); h++)
	{
		if (dbs[h] == InvalidOid)
			continue;
		if (dbs[h] == dboid)
			mine = counts[h];
		else if (most < 0 || counts[h] > counts[most])
			most = h;
	}
	if (most < 0 || counts[most] <= mine + 1)
		return -1;
	for (int i = 0; i < OF_REFUSAL_SLOTS; i++)
		if (of_shared->refusals[i].dboid == dbs[most] && of_shared->refusals[i].at < oldest)
		{
			oldest = of_shared->refusals[i].at;
			victim = i;
		}
	return victim;
}

void
of_refusal_push(const OfRefusal *r)
{
	Latch	   *latch = NULL;
	bool		stored = false;

	if (of_shared == NULL)
		return;
	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	of_shared->refused_total++;
	for (int k = 0; k < OF_REFUSAL_SLOTS; k++)
	{
		int			i = (of_shared->refusal_hint + k) % OF_REFUSAL_SLOTS;

		if (!of_shared->refusals[i].used)
		{
			of_shared->refusals[i] = *r;
			of_shared->refusals[i].used = true;
			of_shared->refusal_hint = (i + 1) % OF_REFUSAL_SLOTS;
			stored = true;
			break;
		}
	}
	if (!stored)
	{
		int			victim = refusal_victim(r->dboid);

		if (victim >= 0)
		{
			of_shared->refusals[victim] = *r;
			of_shared->refusals[victim].used = true;
		}
		of_shared->refused_dropped++;
	}
	for (int i = 0; i < OF_MAX_SCHEDULERS; i++)
		if (of_shared->sched[i].dboid == r->dboid && of_shared->sched[i].pid != 0)
			latch = of_shared->sched[i].latch;
	LWLockRelease(of_shared->lock);
	if (latch)
		SetLatch(latch);
}

/*
 * of_refusal_take: move up to max queued refusals of database dboid into
 * out; returns how many.
 */
int
of_refusal_take(Oid dboid, OfRefusal *out, int max)
{
	int			n = 0;

	if (of_shared == NULL)
		return 0;
	LWLockAcquire(of_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < OF_REFUSAL_SLOTS && n < max; i++)
	{
		if (of_shared->refusals[i].used && of_shared->refusals[i].dboid == dboid)
		{
			out[n++] = of_shared->refusals[i];
			of_shared->refusals[i].used = false;
		}
	}
	LWLockRelease(of_shared->lock);
	return n;
}
