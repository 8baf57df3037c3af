/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  The server API differences between the PostgreSQL majors order_flow
 *	  builds for (15 to 18), in one place.  Code calls the of_* names
 *	  below; each expands to the form its server has.  Everything else the
 *	  extension calls has the same signature in every supported major.
 *
 * 16: pg_proc_aclcheck() and the per-class owner checks gave way to
 *     object_aclcheck() / object_ownercheck(); GUC got its own allocators
 *     (guc_malloc, guc_strdup, guc_free); the executor's range table
 *     gained RTEPermissionInfo (ExecInitRangeTable takes the list);
 *     EvalPlanQualInit takes the result relations; DecodeDateTime reports
 *     errors through a DateTimeErrorExtra.
 * 18: ExecInitRangeTable takes the unpruned relations;
 *     RelationGetPrimaryKeyIndex says whether a deferrable key will do.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ORDER_FLOW_COMPAT_H
#define ORDER_FLOW_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "order_flow needs PostgreSQL 15 or later"
#endif

#include "catalog/pg_database_d.h"
#include "catalog/pg_proc_d.h"
#include "executor/executor.h"
#include "nodes/bitmapset.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif

/*
 * memory a setting's check hook hands to GUC (its new value, its extra):
 * 16 gave GUC allocators of its own; before, plain malloc/strdup/free
 */
#if PG_VERSION_NUM >= 160000
#define of_guc_malloc(size) guc_malloc(LOG, (size))
#define of_guc_strdup(s) guc_strdup(LOG, (s))
#define of_guc_free(p) guc_free(p)
#else
#define of_guc_malloc(size) malloc(size)
#define of_guc_strdup(s) strdup(s)
#define of_guc_free(p) free(p)
#endif

/* may role run the function? */
#if PG_VERSION_NUM >= 160000
#define of_proc_aclcheck(fn, role, mode) object_aclcheck(ProcedureRelationId, (fn), (role), (mode))
#else
#define of_proc_aclcheck(fn, role, mode) pg_proc_aclcheck((fn), (role), (mode))
#endif

/* does role own the database? */
#if PG_VERSION_NUM >= 160000
#define of_database_ownercheck(db, role) object_ownercheck(DatabaseRelationId, (db), (role))
#else
#define of_database_ownercheck(db, role) pg_database_ownercheck((db), (role))
#endif

/* the primary key index of rel (a deferrable one too: ours are not) */
#if PG_VERSION_NUM >= 180000
#define of_primary_key_index(rel) RelationGetPrimaryKeyIndex((rel), true)
#else
#define of_primary_key_index(rel) RelationGetPrimaryKeyIndex(rel)
#endif

/*
 * of_init_range_table: estate's range table is rtable (RTE_RELATION
 * entries, numbered from 1 in list order), every relation of it
 * unpruned, none with permissions to check (the extension's own tables,
 * written as their owner).
 */
static inline void
of_init_range_table(EState *estate, List *rtable)
{
#if PG_VERSION_NUM >= 160000
	List	   *perminfos = NIL;
	Bitmapset  *unpruned = NULL;
	int			rti = 0;
	ListCell   *lc;

	foreach(lc, rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		(void) addRTEPermissionInfo(&perminfos, rte);
		unpruned = bms_add_member(unpruned, ++rti);
	}
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(estate, rtable, perminfos, unpruned);
#else
	(void) unpruned;
	ExecInitRangeTable(estate, rtable, perminfos);
#endif
#else
	ExecInitRangeTable(estate, rtable);
#endif
}

/* an EvalPlanQual state with no plan of its own (for the simple-relation updates) */
#if PG_VERSION_NUM >= 160000
#define of_epq_init(epq, estate) EvalPlanQualInit((epq), (estate), NULL, NIL, -1, NIL)
#else
#define of_epq_init(epq, estate) EvalPlanQualInit((epq), (estate), NULL, NIL, -1)
#endif

/* DecodeDateTime, errors reported by its return value alone */
static inline int
of_decode_datetime(char **field, int *ftype, int nf, int *dtype, struct pg_tm *tm,
				   fsec_t *fsec, int *tzp)
{
#if PG_VERSION_NUM >= 160000
	DateTimeErrorExtra extra;

	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp, &extra);
#else
	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tzp);
#endif
}

#endif							/* ORDER_FLOW_COMPAT_H */
