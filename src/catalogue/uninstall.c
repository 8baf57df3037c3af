/*-------------------------------------------------------------------------
 *
 * catalogue/uninstall.c
 *	  DROP EXTENSION order_flow while tables are still managed: refused with
 *	  the way out, unless CASCADE.
 *
 * PostgreSQL would refuse it too (the managed tables' triggers depend on
 * the extension's trigger function), but with a list of dependent objects
 * that does not say what to do; and with CASCADE it drops those triggers,
 * every column of type order_flow.status and the audit log, which is what
 * CASCADE is documented to do.  Checked from the utility hook of the
 * preloaded library (worker/worker.c); without the preload PostgreSQL's
 * own refusal stands.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/extension.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "order_flow.h"

/* Is order_flow among the extensions stmt drops? */
static bool
drops_order_flow(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_EXTENSION)
		return false;
	foreach(lc, stmt->objects)
	{
		Node	   *obj = lfirst(lc);

		if (IsA(obj, String) && strcmp(strVal(obj), "order_flow") == 0)
			return true;
	}
	return false;
}

/*
 * of_check_drop_extension: called before a DROP runs; raises when it is a
 * DROP EXTENSION order_flow without CASCADE and this database still has
 * managed tables.
 */
void
of_check_drop_extension(Node *parsetree)
{
	DropStmt   *stmt;
	bool		pushed = false;
	int64		n = 0;
	char	   *tables = NULL;

	if (!IsA(parsetree, DropStmt))
		return;
	stmt = (DropStmt *) parsetree;
	if (!drops_order_flow(stmt) || stmt->behavior == DROP_CASCADE ||
		!OidIsValid(get_extension_oid("order_flow", true)))
		return;

	if (!ActiveSnapshotSet())
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		pushed = true;
	}
	SPI_connect();
	if (SPI_execute("SELECT pg_catalog.count(*), pg_catalog.string_agg(m.tbl, ', ' ORDER BY m.tbl)"
					" FROM order_flow.managed_table m", true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		n = isnull ? 0 : DatumGetInt64(d);
		if (n > 0)
			tables = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("cannot drop extension order_flow: %lld %s still managed",
						(long long) n, n == 1 ? "table is" : "tables are"),
				 errdetail("Managed: %s.", tables),
				 errhint("Detach them first, keeping their rows and turning order_flow.status columns into text: "
						 "SELECT order_flow.unmanage(relid, convert_status => true) FROM order_flow.managed_table; "
						 "DROP EXTENSION ... CASCADE would drop their triggers, their order_flow.status columns "
						 "and the audit log.")));
	SPI_finish();
	if (pushed)
		PopActiveSnapshot();
}
