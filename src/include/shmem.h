/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Shared-memory layout of order_flow (see worker/shmem.c for the protocol).
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDER_FLOW_SHMEM_H
#define ORDER_FLOW_SHMEM_H

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "port/atomics.h"
#include "storage/lwlock.h"

#define OF_MAX_SCHEDULERS	64
#define OF_REFUSAL_SLOTS	1024

typedef struct OfRefusal
{
	bool		used;
	Oid			dboid;
	TimestampTz at;
	char		actor[128];
	char		db_user[NAMEDATALEN];
	char		tbl[2 * NAMEDATALEN + 8];
	char		order_key[128];
	char		from_state[64];
	char		to_state[64];
	char		sqlstate[6];
	char		reason[256];
} OfRefusal;

typedef struct OfSchedSlot
{
	Oid			dboid;
	pid_t		pid;			/* 0: free or exited */
	Latch	   *latch;
	TimestampTz next_wake;		/* when the scheduler plans to wake */
	bool		absent;			/* exited: extension not installed */
	TimestampTz absent_since;
	uint64		sweeps;
	TimestampTz last_sweep;		/* when the last sweep ended (0: none yet) */
	pg_atomic_uint64 fold_requested;	/* latest commit with events to fold (TimestampTz) */
	pg_atomic_uint64 noted_wake;	/* earliest deadline committed since the scheduler last
									 * planned its nap (TimestampTz; DT_NOEND: none) */
	bool		catch_up_requested;	/* rows written by SQL into the log or the heads */
	bool		no_worker;		/* the launcher found no background worker slot for it */
} OfSchedSlot;

typedef struct OfShared
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	int			nrequests;
	Oid			requests[OF_MAX_SCHEDULERS];	/* databases asking to be served */
	OfSchedSlot sched[OF_MAX_SCHEDULERS];
	uint64		refused_total;
	uint64		refused_dropped;
	int			refusal_hint;
	OfRefusal	refusals[OF_REFUSAL_SLOTS];
} OfShared;

extern OfShared *of_shared;

extern void of_shmem_init(void);
extern void of_note_deadline(TimestampTz dl);
extern void of_request_service(void);
extern void of_refusal_push(const OfRefusal *r);
extern int	of_refusal_take(Oid dboid, OfRefusal *out, int max);
extern bool of_scheduler_serves(void);
extern void of_fold_request(bool catch_up);
extern bool of_note_no_worker(Oid dboid, bool no_worker);
extern void of_sched_slot_reset(OfSchedSlot *slot, Oid dboid);
extern TimestampTz of_plan_nap(OfSchedSlot *slot, TimestampTz planned);
extern int	of_worker_shortage(void);

/* how soon after a commit the scheduler folds its events (ms) */
#define OF_FOLD_DELAY_MS	200

#endif							/* ORDER_FLOW_SHMEM_H */
