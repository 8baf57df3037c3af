/*-------------------------------------------------------------------------
 *
 * order_flow.h
 *	  Declarations shared by the C files of the order_flow extension.
 *
 * The C code is laid out by subsystem, one concern per file (each file's
 * header says what it owns):
 *   settings/settings.c      module initialisation and every setting
 *   status/status.c          the order_flow.status type
 *   catalogue/cache.c        the backend-local workflow catalogue cache
 *   catalogue/uninstall.c    DROP EXTENSION refused while tables are managed
 *   rights/rights.c          actors, admins, the extension owner, user switches
 *   rights/as_owner.c        reaching users' objects with their owners' rights
 *   transition/transition.c  the transition trigger and the transition context
 *   chain/chain.c            the per-order audit chain on disk (lock, append)
 *   chain/audit.c            event hashing, _append_event, verification, guard
 *   metrics/fold.c           the per-order rollup and when events are folded
 *   metrics/agg_*.c          the C aggregates over the rollup, one family
 *                            per file, over agg_time.c, agg_dict.c and
 *                            agg_values.c (see aggregates.h)
 *   worker/shmem.c           shared memory: scheduler registry, wake-ups,
 *                            refusal queue
 *   worker/worker.c          the launcher and the per-database schedulers
 *   util/plans.c             saved SPI plans
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDER_FLOW_H
#define ORDER_FLOW_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "utils/relcache.h"

#define OF_SCHEMA			"order_flow"
#define OF_INTERNAL_SCHEMA	"_order_flow"	/* internal helpers, from 1.2 */
#define OF_CITUS_SCHEMA		"order_flow_citus"	/* companion tables on Citus (citus/shards.c) */
#define OF_DIST_COLUMN		"dist_key"	/* their distribution column */
#define OF_NAME_MAX			64		/* workflow, state and department names */
#define OF_KEY_MAX			(3 * OF_NAME_MAX)
#define OF_HASH_LEN			32		/* SHA-256 */

/* citus/shards.c: a managed table's shard on a Citus worker */
typedef struct OfShard
{
	bool		is_shard;		/* false: an ordinary table (the rest unset) */
	Oid			rel[4];			/* companion shards: audit_log, tracked_order, notification, outbox */
	Oid			logical[4];		/* the companion tables they are shards of */
	AttrNumber	dist_att;		/* the distribution column in the shard */
} OfShard;
extern void of_citus_shard(Relation rel, const char *tbl, AttrNumber key, OfShard *out);

/* settings/settings.c */
extern char *of_actor_setting;
extern char *of_reason_setting;
extern char *of_context_setting;
extern bool of_preloaded;
extern char *of_database_setting;
extern int	of_naptime;
extern int	of_batch_size;
extern bool of_enabled;
extern int	of_metrics_fold_mode;
extern bool of_notify_enabled;

/* order_flow.database as parsed by its check hook: n names, NUL-separated */
typedef struct OfNameList
{
	int			n;
	char		names[FLEXIBLE_ARRAY_MEMBER];
} OfNameList;
extern const OfNameList *of_database_names;

/* settings/business_tz.c: order_flow.business_time_zone */
extern void of_define_business_tz(void);
extern struct pg_tz *of_business_tz(void);
extern struct pg_tz *of_metrics_tz(void);

/* order_flow.metrics_fold */
typedef enum OfFoldMode
{
	OF_FOLD_AUTO,
	OF_FOLD_SYNC,
	OF_FOLD_ASYNC
} OfFoldMode;

/* worker/worker.c */
extern void of_register_launcher(void);
extern void of_install_utility_hook(void);

/* rights/rights.c */
extern char *of_current_actor(void);
extern bool of_is_admin(void);
extern Oid	of_extension_owner(void);
extern char *of_db_user(void);

typedef struct OfUserSave
{
	Oid			user;
	int			sec;
} OfUserSave;

extern void of_become(Oid role, bool restricted, OfUserSave *save);
extern void of_become_owner(OfUserSave *save);
extern void of_restore_user(const OfUserSave *save);

/* catalogue/cache.c: the cached workflow graph */
typedef enum OfStamp
{
	OF_STAMP_NONE = 0,
	OF_STAMP_CONTRACT_SIGNED,
	OF_STAMP_WAREHOUSE_CONFIRMED,
	OF_STAMP_FINANCE_APPROVED,
	OF_STAMP_SHIPPED
} OfStamp;

typedef struct OfState
{
	char		key[OF_KEY_MAX];	/* workflow '\0' state -- see of_key */
	char		name[OF_NAME_MAX];
	char		category;		/* 'i'nitial, 'a'ctive, 'e'xception, 't'erminal */
	bool		resumes_to_origin;
	OfStamp		stamp;
	bool		has_dwell;
	Interval	max_dwell;		/* the "cannot wait" threshold */
	List	   *next_states;	/* char *, sorted by process position */
} OfState;

typedef struct OfEdge
{
	char		key[OF_KEY_MAX];	/* workflow '\0' from '\0' to */
	int			nnotify;
	char	  **notify;
	Interval	ack_within;
	int			nperformers;		/* 0: anyone may take the edge */
	char	  **performed_by;
	bool		reason_required;
	char	   *exception_type;
} OfEdge;

typedef struct OfWorkflow
{
	char		key[OF_KEY_MAX];
	char		initial[OF_NAME_MAX];
	bool		has_reminder;
	float8		first_factor;	/* reminder level 1 factor */
} OfWorkflow;

extern OfWorkflow *of_workflow(const char *workflow);
extern OfState *of_state(const char *workflow, const char *state);
extern OfEdge *of_edge(const char *workflow, const char *from, const char *to);
extern bool of_department_always_open(const char *department);
extern bool of_actor_in(const char *actor, char **departments, int n);
extern const char *of_stamp_name(OfStamp stamp);
extern Oid	of_sentinel_relid(void);
extern void of_catalog_init(void);
extern bool of_restoring(void);

/* catalogue/uninstall.c */
extern void of_check_drop_extension(Node *parsetree);
extern bool of_dumping(void);
extern bool of_catalog_async_fold(void);

/* util/plans.c */
extern SPIPlanPtr of_keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types);

/* util/schema.c */
extern bool of_internal_schema_ready(void);
extern const char *of_internal_schema(void);

/* metrics/fold.c */
extern void of_metrics_after_append(const char *key, int64 seq);

/* status/status.c */
extern char *of_closest_states(const char *name, const char *workflow);
extern void of_status_cache_invalidate(void);

/* chain/audit.c */
typedef struct OfEvent
{
	const char *order_key;
	int64		seq;
	const char *action;
	const char *from_state;
	const char *to_state;
	const char *actor;
	const char *db_user;
	TimestampTz occurred_at;
	TimestampTz recorded_at;
	const char *details;		/* jsonb text form */
	const uint8 *prev_hash;		/* NULL for the first event */
	int			prev_hash_len;
} OfEvent;

extern void of_event_hash(const OfEvent *ev, uint8 *out);
extern bytea *of_hash_bytea(const uint8 *h);
extern char *of_string_array_text(char **items, int n);

#endif							/* ORDER_FLOW_H */
