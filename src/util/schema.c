/*-------------------------------------------------------------------------
 *
 * util/schema.c
 *	  Where the extension's internal helpers live: schema _order_flow from
 *	  1.2 on (so that \df order_flow.* lists the public API), schema
 *	  order_flow in a database whose extension has not been updated yet.
 *	  The library serves every version of the schema (the scheduler runs
 *	  in databases at 1.0 and 1.1 too), so the few C paths that call an
 *	  internal helper by name ask here which schema to name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"

#include "order_flow.h"

/* OF_INTERNAL_SCHEMA when it exists, else OF_SCHEMA (a schema older than 1.2). */
const char *
of_internal_schema(void)
{
	return OidIsValid(get_namespace_oid(OF_INTERNAL_SCHEMA, true)) ? OF_INTERNAL_SCHEMA : OF_SCHEMA;
}
