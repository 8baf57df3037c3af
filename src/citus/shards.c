/*-------------------------------------------------------------------------
 *
 * citus/shards.c
 *	  Where the transition trigger writes when it fires on a shard of a
 *	  managed table distributed by Citus.
 *
 * order_flow.citus_distribute() (src/sql/citus.sql) distributes a managed
 * table and gives it four companion tables in schema order_flow_citus,
 * "<table>_audit_log", "_tracked_order", "_notification" and "_outbox":
 * the extension's tables of the same names plus a column dist_key, the
 * managed table's distribution column (its order key, or its tenant),
 * distributed by it and co-located with the table.  On a worker the
 * trigger fires on a shard, "<table>_<shardid>", and the order's chain
 * lives in the companions' shards that cover the same hash range, on the
 * same node: the chain is written there, locally, in the transaction of
 * the row's change.  A shard moved by the rebalancer moves with them.
 *
 * A relation is a shard when Citus is installed, the relation is no
 * partition (a partition of a managed table may well be called
 * orders_2024) and the number its name ends with is a shard id in
 * pg_dist_shard.  A name that is the managed table's plus "_<number>"
 * whose id the node does not know (create_distributed_table() copying
 * rows into new shards) is a shard too, and refused, like a shard of a
 * table citus_distribute() did not set up.  In a database with Citus, an
 * ordinary managed table whose order key is unique only per tenant is
 * refused too, until it is distributed.  The answer is found once per
 * relation: the transition trigger keeps it with the relation's layout.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "parser/parse_relation.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/varlena.h"

#include "order_flow.h"

/*
 * The companions' shards of the same hash range as shard $1 (NULL where a
 * companion or its shard is missing), in the chain writer's order, and
 * the managed table's distribution column.
 */
static const char *const shard_query =
"WITH s AS (SELECT logicalrelid, shardminvalue FROM pg_catalog.pg_dist_shard WHERE shardid = $1)"
" SELECT pg_catalog.column_to_column_name(p.logicalrelid, p.partkey),"
"        (SELECT ARRAY[pg_catalog.to_regclass(pg_catalog.shard_name(c.oid, s2.shardid))::pg_catalog.oid, c.oid]"
"           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_dist_shard s2 ON s2.logicalrelid = c.oid"
"          WHERE c.relnamespace = (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = '" OF_CITUS_SCHEMA "')"
"            AND c.relname = (SELECT relname FROM pg_catalog.pg_class WHERE oid = s.logicalrelid)"
"                            OPERATOR(pg_catalog.||) '_' OPERATOR(pg_catalog.||) k.kind"
"            AND s2.shardminvalue = s.shardminvalue)"
"   FROM s JOIN pg_catalog.pg_dist_partition p USING (logicalrelid),"
"        unnest(ARRAY['audit_log', 'tracked_order', 'notification', 'outbox']) WITH ORDINALITY AS k(kind, ord)"
"  ORDER BY k.ord";

static void
refuse(Relation rel, const char *tbl, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s is not set up for order_flow on Citus", tbl),
			 errdetail("\"%s\" is a shard of the managed table %s; %s.", RelationGetRelationName(rel), tbl, why),
			 errhint("Distribute a managed table with order_flow.citus_distribute() on the coordinator "
					 "(README, \"Scale-out on Citus\").")));
}

/* key_unique: rel has a unique index on column key alone */
static bool
key_unique(Relation rel, AttrNumber key)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	bool		found = false;

	foreach(lc, indexes)
	{
		Relation	ind = index_open(lfirst_oid(lc), AccessShareLock);

		found |= ind->rd_index->indisunique && ind->rd_index->indnatts == 1 &&
			ind->rd_index->indkey.values[0] == key &&
			heap_attisnull(ind->rd_indextuple, Anum_pg_index_indpred, NULL) &&
			heap_attisnull(ind->rd_indextuple, Anum_pg_index_indexprs, NULL);
		index_close(ind, AccessShareLock);
	}
	list_free(indexes);
	return found;
}

/*
 * A table whose order key is unique only per tenant (managed in a Citus
 * database, to be distributed by its tenant) has no chain keyed by its
 * order key alone: until citus_distribute() distributes it, its rows are
 * refused.
 */
static void
refuse_tenant_table(Relation rel, const char *tbl, AttrNumber key)
{
	if (rel->rd_rel->relispartition || rel->rd_rel->relkind != RELKIND_RELATION || key_unique(rel, key))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s is not distributed yet, and its order key is unique only per tenant", tbl),
			 errhint("Distribute it by its tenant with order_flow.citus_distribute() before writing orders.")));
}

/*
 * of_citus_shard: whether rel, on which the trigger of managed table tbl
 * (order key column key) fires, is a Citus shard, and if so where its
 * orders' chains are written.
 */
void
of_citus_shard(Relation rel, const char *tbl, AttrNumber key, OfShard *out)
{
	const char *relname = RelationGetRelationName(rel);
	const char *tail = strrchr(relname, '_');
	Oid			types[1] = {INT8OID};
	Datum		values[1];
	char	   *copy = pstrdup(tbl);
	List	   *names = NIL;
	bool		named_like_shard;
	char	   *dist_col = NULL;
	MemoryContext caller = CurrentMemoryContext;

	memset(out, 0, sizeof(*out));
	if (!OidIsValid(get_extension_oid("citus", true)) ||
		!OidIsValid(get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE)))
		return;
	if (rel->rd_rel->relispartition || tail == NULL || tail[1] == '\0')
	{
		refuse_tenant_table(rel, tbl, key);
		return;
	}
	for (const char *p = tail + 1; *p; p++)
		if (!isdigit((unsigned char) *p))
		{
			refuse_tenant_table(rel, tbl, key);
			return;
		}
	named_like_shard = SplitIdentifierString(copy, '.', &names) && names != NIL &&
		strlen((const char *) llast(names)) == (size_t) (tail - relname) &&
		strncmp(relname, (const char *) llast(names), tail - relname) == 0;

	values[0] = Int64GetDatum(strtoi64(tail + 1, NULL, 10));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(shard_query, 1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read Citus's shard metadata");
	if (SPI_processed == 0)
	{
		SPI_finish();
		if (named_like_shard)
			refuse(rel, tbl, "this node does not know its shard id yet (rows copied by create_distributed_table())");
		refuse_tenant_table(rel, tbl, key);
		return;					/* no shard: an ordinary table named like one */
	}
	out->is_shard = true;
	for (uint64 i = 0; i < SPI_processed && i < 4; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull);

		if (!isnull)
		{
			ArrayType  *a = DatumGetArrayTypeP(d);
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			deconstruct_array(a, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
			out->rel[i] = n == 2 && !nulls[0] ? DatumGetObjectId(elems[0]) : InvalidOid;
			out->logical[i] = n == 2 && !nulls[1] ? DatumGetObjectId(elems[1]) : InvalidOid;
		}
		if (i == 0)
		{
			char	   *col = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

			dist_col = col ? MemoryContextStrdup(caller, col) : NULL;
		}
	}
	SPI_finish();

	for (int i = 0; i < 4; i++)
		if (!OidIsValid(out->rel[i]))
			refuse(rel, tbl, "its companion tables in schema " OF_CITUS_SCHEMA " are missing");
	out->dist_att = dist_col ? attnameAttNum(rel, dist_col, false) : InvalidAttrNumber;
	if (out->dist_att <= 0)
		refuse(rel, tbl, "its distribution column is not known");
}
