/*-------------------------------------------------------------------------
 *
 * order_flow.c
 *	  Module initialisation: settings and the process-wide hooks.
 *
 * Settings defined here are session-level (the claimed actor, a reason for
 * plain UPDATEs).  Settings that only a preloaded library can honour are
 * defined only while shared_preload_libraries is being processed, so
 * CREATE EXTENSION in a server without the preload never dies on them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "order_flow.h"

PG_MODULE_MAGIC;

char	   *of_actor_setting = NULL;
char	   *of_reason_setting = NULL;
bool		of_preloaded = false;

void		_PG_init(void);

void
_PG_init(void)
{
	if (process_shared_preload_libraries_in_progress)
		of_preloaded = true;

	DefineCustomStringVariable("order_flow.actor",
							   "The business actor on whose behalf this session acts.",
							   "Pooled application connections set it per transaction; empty means session_user.",
							   &of_actor_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("order_flow.reason",
							   "Reason recorded with the next plain UPDATE transitions of this session.",
							   "Edges that require a reason accept it from here when no note is given.",
							   &of_reason_setting,
							   "",
							   PGC_USERSET,
							   0,
							   NULL, NULL, NULL);

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
