/*-------------------------------------------------------------------------
 *
 * metrics/agg_dict.c
 *	  Sets of distinct strings: a per-query dictionary that interns strings to
 *	  small ids, and per-group id sets (breadth, categories in health).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "port/pg_bitutils.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "aggregates.h"
#include "order_flow.h"

/* ---- sets of distinct strings: a per-query dictionary + per-group ids ---- */

Dict *
dict_create(MemoryContext cxt)
{
	Dict	   *d = MemoryContextAlloc(cxt, sizeof(Dict));

	d->cxt = cxt;
	d->n = 0;
	d->capacity = 16;
	d->table_size = 64;
	d->table = MemoryContextAlloc(cxt, sizeof(int32) * d->table_size);
	memset(d->table, 0xff, sizeof(int32) * d->table_size);
	d->hashes = MemoryContextAlloc(cxt, sizeof(uint32) * d->capacity);
	d->lens = MemoryContextAlloc(cxt, sizeof(int32) * d->capacity);
	d->strs = MemoryContextAlloc(cxt, sizeof(char *) * d->capacity);
	return d;
}

/* The dictionary of the calling support function, created on first use. */
Dict *
fn_dict(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = dict_create(fcinfo->flinfo->fn_mcxt);
	return (Dict *) fcinfo->flinfo->fn_extra;
}

int32
dict_intern(Dict *d, const char *str, int32 len)
{
	uint32		h = hash_bytes((const unsigned char *) str, len);
	uint32		mask = d->table_size - 1;
	uint32		i = h & mask;
	int32		id;

	while ((id = d->table[i]) >= 0)
	{
		if (d->hashes[id] == h && d->lens[id] == len && memcmp(d->strs[id], str, len) == 0)
			return id;
		i = (i + 1) & mask;
	}
	if (d->n >= (1 << 26))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct values for a breadth count")));
	if (d->n == d->capacity)
	{
		d->capacity *= 2;
		d->hashes = repalloc(d->hashes, sizeof(uint32) * d->capacity);
		d->lens = repalloc(d->lens, sizeof(int32) * d->capacity);
		d->strs = repalloc(d->strs, sizeof(char *) * d->capacity);
	}
	id = d->n++;
	d->hashes[id] = h;
	d->lens[id] = len;
	d->strs[id] = MemoryContextAlloc(d->cxt, len > 0 ? len : 1);
	memcpy(d->strs[id], str, len);
	if (d->n * 2 > d->table_size)
	{
		d->table_size *= 2;
		d->table = repalloc(d->table, sizeof(int32) * d->table_size);
		memset(d->table, 0xff, sizeof(int32) * d->table_size);
		mask = d->table_size - 1;
		for (int32 j = 0; j < d->n; j++)
		{
			i = d->hashes[j] & mask;
			while (d->table[i] >= 0)
				i = (i + 1) & mask;
			d->table[i] = j;
		}
	}
	else
		d->table[i] = id;
	return id;
}

void
idset_init(IdSet *s, Dict *dict)
{
	s->bits = 0;
	s->dict = dict;
	s->extra = NULL;
	s->nextra = 0;
	s->extra_size = 0;
}

int32
idset_count(const IdSet *s)
{
	return pg_popcount((const char *) &s->bits, sizeof(s->bits)) + s->nextra;
}

/* Calls fn(id) for every member. */

void
idset_merge(IdSet *into, MemoryContext cxt, const IdSet *from)
{
	if (into->dict == from->dict)
	{
		into->bits |= from->bits;
		for (int32 j = 0; j < from->extra_size; j++)
			if (from->extra[j] >= 0)
				idset_add(into, cxt, from->extra[j]);
		return;
	}
	IDSET_FOREACH(from, id,
				  idset_add_string(into, cxt, from->dict->strs[id], from->dict->lens[id]));
}

void
idset_send(StringInfo buf, const IdSet *s)
{
	pq_sendint32(buf, idset_count(s));
	IDSET_FOREACH(s, id,
				  {
					  pq_sendint32(buf, s->dict->lens[id]);
					  pq_sendbytes(buf, s->dict->strs[id], s->dict->lens[id]);
				  });
}

void
idset_recv(StringInfo buf, IdSet *s, MemoryContext cxt)
{
	int32		n = pq_getmsgint(buf, 4);

	for (int32 j = 0; j < n; j++)
	{
		int32		len = pq_getmsgint(buf, 4);
		const char *str = pq_getmsgbytes(buf, len);

		idset_add_string(s, cxt, str, len);
	}
}

