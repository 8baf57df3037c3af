/*-------------------------------------------------------------------------
 *
 * util/schema.c
 *	  Where the extension's internal helpers live: schema _order_flow from
 *	  1.2 on (so that \df order_flow.* lists the public API), schema
 *	  order_flow in a database whose extension has not been updated yet.
 *	  The library serves every version of the schema (the scheduler runs
 *	  in databases at 1.0 and 1.1 too), so the few C paths that call an
 *	  internal helper by name ask here which schema to name, and the
 *	  metrics ask which time zone that version reads dates in.
 *
 * Only a schema _order_flow that belongs to the extension counts: in a
 * database still at 1.1, a role allowed to create schemas could otherwise
 * create one of that name and have the scheduler (a superuser) call its
 * functions.  The answer is kept until pg_namespace changes (CREATE or
 * DROP of a schema, as an update or a DROP EXTENSION does).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "order_flow.h"

static int	schema_state = -1;	/* -1: not known; 0: before 1.2; 1: from 1.2 */
static bool callback_registered = false;

static void
schema_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	schema_state = -1;
}

/* Does this database's extension keep its helpers in _order_flow (1.2 on)? */
bool
of_internal_schema_ready(void)
{
	if (schema_state < 0)
	{
		Oid			nsp = get_namespace_oid(OF_INTERNAL_SCHEMA, true);
		Oid			ext = get_extension_oid("order_flow", true);

		if (!callback_registered)
		{
			CacheRegisterSyscacheCallback(NAMESPACEOID, schema_invalidate, (Datum) 0);
			callback_registered = true;
		}
		schema_state = OidIsValid(nsp) && OidIsValid(ext) &&
			getExtensionOfObject(NamespaceRelationId, nsp) == ext;
	}
	return schema_state == 1;
}

/* OF_INTERNAL_SCHEMA from 1.2, else OF_SCHEMA. */
const char *
of_internal_schema(void)
{
	return of_internal_schema_ready() ? OF_INTERNAL_SCHEMA : OF_SCHEMA;
}
