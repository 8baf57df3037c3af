/*-------------------------------------------------------------------------
 *
 * rights/as_owner.c
 *	  The station's reach into objects that users own, run with those
 *	  users' rights.
 *
 * _order_flow._read_as_owner() does the same for manage(), repair_drift()
 * and verify_audit(), which read a managed table's rows (and so evaluate
 * its columns' casts and output functions, which the table's owner may
 * have written) on behalf of an administrator or superuser.
 *
 * The station functions are SECURITY DEFINER so that an operator needs
 * EXECUTE on them and nothing else.  Their owner is the superuser who
 * created the extension, so any user code they reach -- triggers on the
 * managed orders table, functions inside a stock-source view over the WMS
 * -- must not run with that owner's rights.  The two entry points here
 * switch to the owner of the object reached (as PostgreSQL's own
 * referential-integrity triggers do) under SECURITY_RESTRICTED_OPERATION,
 * so such code runs with no more rights than its author already has.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "funcapi.h"
#include "utils/tuplestore.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "catalog/pg_type_d.h"

#include "order_flow.h"

static Oid
relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

PG_FUNCTION_INFO_V1(order_flow_owner_move);

/*
 * _order_flow._owner_move(tbl, order_key, to_state, note, details): a
 * transition of a managed table made with its owner's rights.
 */
Datum
order_flow_owner_move(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	OfUserSave	save;
	Oid			types[5] = {REGCLASSOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID};
	Datum		values[5];
	char		nulls[5];

	for (int i = 0; i < 5; i++)
	{
		nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
		values[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	of_become(relation_owner(relid), true, &save);
	if (SPI_execute_with_args(psprintf("SELECT %s._move($1, $2, $3, $4, $5, 'transition', NULL)",
									   of_internal_schema()),
							  5, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not move order");
	of_restore_user(&save);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(order_flow_stock);

/*
 * _order_flow._stock(source regclass, op, sku, qty): read, lock or take stock
 * in the configured stock source, with the source owner's rights.
 * Returns the available quantity (before taking, for 'take'), NULL when the
 * source has no row for the SKU.
 */
Datum
order_flow_stock(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *op = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *rel;
	const char *sql;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	OfUserSave	save;
	bool		isnull = true;
	Datum		result = (Datum) 0;

	rel = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid)));
	if (strcmp(op, "read") == 0)
		sql = psprintf("SELECT available FROM %s WHERE sku OPERATOR(pg_catalog.=) $1"
					   " AND $2 IS NOT DISTINCT FROM $2", rel);
	else if (strcmp(op, "lock") == 0)
		sql = psprintf("SELECT available FROM %s WHERE sku OPERATOR(pg_catalog.=) $1"
					   " AND $2 IS NOT DISTINCT FROM $2 FOR UPDATE", rel);
	else if (strcmp(op, "take") == 0)
		sql = psprintf("UPDATE %s SET available = available OPERATOR(pg_catalog.-) $2"
					   " WHERE sku OPERATOR(pg_catalog.=) $1 RETURNING available OPERATOR(pg_catalog.+) $2", rel);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown stock operation \"%s\"", op)));
	values[0] = PG_GETARG_DATUM(2);
	values[1] = PG_ARGISNULL(3) ? Int32GetDatum(0) : PG_GETARG_DATUM(3);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	of_become(relation_owner(relid), true, &save);
	if (SPI_execute_with_args(sql, 2, types, values, NULL, false, 0) < 0)
		elog(ERROR, "could not %s stock in %s", op, rel);
	if (SPI_processed >= 1)
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	of_restore_user(&save);
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(order_flow_read_as_owner);

/*
 * _order_flow._read_as_owner(tbl, key_column, status_column, customer_column,
 * attributes) RETURNS TABLE (k text, s text, c text, a jsonb): every row of
 * a table to be managed, as the trigger will see it, read as the table's
 * owner under SECURITY_RESTRICTED_OPERATION.  The query is built here from
 * the column names alone, and the caller must be allowed to read the
 * table: no more is read, and no other code runs, than the owner's own.
 */
Datum
order_flow_read_as_owner(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	StringInfoData sql;
	OfUserSave	save;
	Portal		portal;
	char	   *rel;
	int			nargs = 0;
	Oid			key_type[1] = {TEXTOID};
	Datum		key_arg = (Datum) 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, key column and status column must not be null")));
	relid = PG_GETARG_OID(0);
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for table %s", get_rel_name(relid))));
	rel = DatumGetCString(DirectFunctionCall1(regclassout, ObjectIdGetDatum(relid)));

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t.%s::pg_catalog.text, t.%s::pg_catalog.text, ",
					 quote_identifier(NameStr(*PG_GETARG_NAME(1))),
					 quote_identifier(NameStr(*PG_GETARG_NAME(2))));
	if (PG_ARGISNULL(3))
		appendStringInfoString(&sql, "NULL::pg_catalog.text, ");
	else
		appendStringInfo(&sql, "t.%s::pg_catalog.text, ", quote_identifier(NameStr(*PG_GETARG_NAME(3))));
	if (PG_ARGISNULL(4) || ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(4)),
										  ARR_DIMS(PG_GETARG_ARRAYTYPE_P(4))) == 0)
		appendStringInfoString(&sql, "'{}'::pg_catalog.jsonb");
	else
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;

		deconstruct_array(PG_GETARG_ARRAYTYPE_P(4), NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR,
						  &elems, &nulls, &n);
		appendStringInfoString(&sql, "pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object(");
		for (int i = 0; i < n; i++)
		{
			const char *col;

			if (nulls[i])
				ereport(ERROR,
						(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						 errmsg("attribute names must not be null")));
			col = NameStr(*DatumGetName(elems[i]));
			appendStringInfo(&sql, "%s%s, t.%s", i ? ", " : "", quote_literal_cstr(col),
							 quote_identifier(col));
		}
		appendStringInfoString(&sql, "))");
	}
	appendStringInfo(&sql, " FROM %s t", rel);
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
	{
		/* one order: found through the key's own type (and so its index) */
		AttrNumber	att = get_attnum(relid, NameStr(*PG_GETARG_NAME(1)));

		if (att == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of %s does not exist", NameStr(*PG_GETARG_NAME(1)), rel)));
		appendStringInfo(&sql, " WHERE t.%s OPERATOR(pg_catalog.=) $1::%s",
						 quote_identifier(NameStr(*PG_GETARG_NAME(1))),
						 format_type_be_qualified(get_atttype(relid, att)));
		key_arg = PG_GETARG_DATUM(5);
		nargs = 1;
	}

	InitMaterializedSRF(fcinfo, 0);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	of_become(relation_owner(relid), true, &save);
	portal = SPI_cursor_open_with_args(NULL, sql.data, nargs, key_type, &key_arg, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
			tuplestore_puttuple(rsinfo->setResult, SPI_tuptable->vals[i]);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	of_restore_user(&save);
	SPI_finish();
	return (Datum) 0;
}
