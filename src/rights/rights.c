/*-------------------------------------------------------------------------
 *
 * rights/rights.c
 *	  Who is acting: the claimed actor, the database user, admin bypass and
 *	  the extension owner the write paths run as.
 *
 * The claimed actor (setting order_flow.actor, else session_user) is what
 * department membership is judged on.  The admin bypass is judged on the
 * database user -- the outer user, so a SECURITY DEFINER function of the
 * extension does not make its caller an admin -- which cannot be spoofed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "order_flow.h"

/*
 * of_current_actor: palloc'd name of the claimed actor.
 */
char *
of_current_actor(void)
{
	if (of_actor_setting != NULL && of_actor_setting[0] != '\0')
		return pstrdup(of_actor_setting);
	return GetUserNameFromId(GetSessionUserId(), false);
}

/*
 * of_db_user: the database user behind the call, ignoring SECURITY DEFINER.
 */
char *
of_db_user(void)
{
	return GetUserNameFromId(GetOuterUserId(), false);
}

/*
 * of_is_admin: superusers and members of order_flow_admin bypass the edge
 * and acknowledgement rights.
 */
bool
of_is_admin(void)
{
	Oid			user = GetOuterUserId();
	Oid			admin;

	if (superuser_arg(user))
		return true;
	admin = get_role_oid("order_flow_admin", true);
	return OidIsValid(admin) && has_privs_of_role(user, admin);
}

/*
 * of_extension_owner: owner of the order_flow schema.  The C write paths
 * switch to it, since ordinary roles have no write access to the log.
 * Asked on every transition and every metrics fold, so it is remembered
 * until pg_namespace changes (a schema renamed, dropped, given away).
 */
static Oid	owner_cached = InvalidOid;
static bool owner_callback = false;

static void
owner_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	owner_cached = InvalidOid;
}

Oid
of_extension_owner(void)
{
	Oid			nsp;
	HeapTuple	tup;

	if (OidIsValid(owner_cached))
		return owner_cached;
	if (!owner_callback)
	{
		CacheRegisterSyscacheCallback(NAMESPACEOID, owner_invalidate, (Datum) 0);
		owner_callback = true;
	}
	nsp = get_namespace_oid(OF_SCHEMA, false);
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner_cached = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner_cached;
}

/*
 * of_become / of_restore_user: the one way the extension's C code changes
 * the current user -- to the extension owner for its own writes
 * (of_become_owner), or to the owner of a user's object, restricted, to
 * run that user's code.  The switch is undone by of_restore_user, or by
 * the (sub)transaction's abort on error.
 */
void
of_become(Oid role, bool restricted, OfUserSave *save)
{
	GetUserIdAndSecContext(&save->user, &save->sec);
	SetUserIdAndSecContext(role, save->sec | SECURITY_LOCAL_USERID_CHANGE |
						   (restricted ? SECURITY_RESTRICTED_OPERATION : 0));
}

void
of_become_owner(OfUserSave *save)
{
	of_become(of_extension_owner(), false, save);
}

void
of_restore_user(const OfUserSave *save)
{
	SetUserIdAndSecContext(save->user, save->sec);
}

PG_FUNCTION_INFO_V1(order_flow_current_actor);

Datum
order_flow_current_actor(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(of_current_actor()));
}

PG_FUNCTION_INFO_V1(order_flow_is_admin);

Datum
order_flow_is_admin(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(of_is_admin());
}

PG_FUNCTION_INFO_V1(order_flow_caller_may_read);

/*
 * _order_flow._caller_may_read(tbl): may the database user behind the call
 * (not the SECURITY DEFINER owner) SELECT from tbl?
 */
Datum
order_flow_caller_may_read(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(pg_class_aclcheck(PG_GETARG_OID(0), GetOuterUserId(), ACL_SELECT) == ACLCHECK_OK);
}
