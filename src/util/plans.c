/*-------------------------------------------------------------------------
 *
 * util/plans.c
 *	  Saved SPI plans for the few statements the C paths still run: each
 *	  prepared once per backend, on first use, and kept.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "order_flow.h"

/*
 * of_keep_plan: the plan in *slot, prepared and kept from sql on first use
 * (the caller has connected to SPI).
 */
SPIPlanPtr
of_keep_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *types)
{
	if (*slot == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL || SPI_keepplan(p))
			elog(ERROR, "could not prepare order_flow statement: %s", sql);
		*slot = p;
	}
	return *slot;
}
