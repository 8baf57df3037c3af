# 004_upgrade.pl -- the upgrade paths: a database created at order_flow 1.0,
# with orders, events, recorded facts and a customised catalogue, updated
# with ALTER EXTENSION order_flow UPDATE; then one created at 1.1 (every
# released version is a starting point).
#
#   - the update succeeds and the database reports the default version;
#   - every extension object (functions with their bodies and settings,
#     tables and columns, indexes, constraints, triggers, views, types,
#     operators, aggregates, privileges, comments) is exactly what a fresh
#     CREATE EXTENSION gives: a catalogue fingerprint compared object by
#     object;
#   - nothing is lost: orders, audit events, notifications, the metrics
#     rollup, customised configuration; the audit chains still verify;
#   - the new version's behaviour applies at once (record() refuses a
#     malformed payment that 1.0 accepted) and the old data goes on:
#     transitions continue the chains, the rollup stays equal to
#     metrics_rebuild()'s.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'order_flow'");
$node->start;

my $default = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'order_flow'});
isnt($default, '1.0', "the default version ($default) is newer than 1.0");

# ------------------------------------------------------------ a 1.0 database
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{CREATE EXTENSION order_flow VERSION '1.0'});
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'order_flow'}),
	'1.0', 'database created at 1.0');

$node->safe_psql('old', q{
CREATE TABLE orders (id int PRIMARY KEY, customer text, region text, grade text,
                     status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders', customer_column => 'customer', attributes => '{region,grade}');
INSERT INTO orders (id, customer, region, grade)
SELECT g, 'C' || (g % 3), CASE WHEN g % 2 = 0 THEN 'east' ELSE 'west' END, 'A'
  FROM generate_series(1, 6) g;
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id <= 4;
UPDATE orders SET status = 'warehouse_confirmed' WHERE id <= 2;
SELECT order_flow.transition('orders', '6', 'cancelled', 'customer withdrew');
SELECT order_flow.record('1', 'payment', '{"amount": 100, "due_date": "2026-01-31", "paid_date": "2026-01-20"}');
SELECT order_flow.record('2', 'exception', '{"exception_type": "pricing_error"}');
SELECT order_flow.record('3', 'complaint', '{"text": "late quote"}');
UPDATE order_flow.state SET max_dwell = interval '36 hours'
 WHERE workflow = 'b2b_order' AND state = 'quoted';
INSERT INTO order_flow.department (department, name) VALUES ('quality', 'Quality control');
});

# 1.0 accepted a payment with a date that is no date
my ($rc, $out, $err) = $node->psql('old',
	q{SELECT order_flow.record('4', 'payment', '{"amount": 5, "due_date": "soon"}')});
is($rc, 0, '1.0 accepts a payment whose due_date is not a date') or diag($err);

my $content = q{
SELECT md5(string_agg(x, E'\n' ORDER BY x)) FROM (
  SELECT format('a %s %s %s %s %s %s %s %s', order_key, seq, action, from_state, to_state, actor,
                details, encode(hash, 'hex')) AS x FROM order_flow.audit_log
  UNION ALL SELECT format('o %s %s', id, status) FROM orders
  UNION ALL SELECT format('t %s %s %s %s', order_key, state, last_seq, customer_key) FROM order_flow.tracked_order
  UNION ALL SELECT format('n %s %s %s %s %s', order_key, department, level, status, to_state)
              FROM order_flow.notification
  UNION ALL SELECT format('f %s', f) FROM order_flow.order_fact f
  UNION ALL SELECT format('x %s %s %s', order_key, exception_type, occurred_at) FROM order_flow.exception_fact
  UNION ALL SELECT format('s %s %s %s', workflow, state, max_dwell) FROM order_flow.state
  UNION ALL SELECT format('d %s', department) FROM order_flow.department) q};
my $before = $node->safe_psql('old', $content);
my $events = $node->safe_psql('old', 'SELECT count(*) FROM order_flow.audit_log');
cmp_ok($events, '>', 20, "the 1.0 database has $events audit events");

# ------------------------------------------------------------------ update
($rc, $out, $err) = $node->psql('old', 'ALTER EXTENSION order_flow UPDATE');
is($rc, 0, 'ALTER EXTENSION order_flow UPDATE succeeds') or diag($err);
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'order_flow'}),
	$default, "the database is now at $default");
is($node->safe_psql('old', $content), $before,
	'orders, events, notifications, rollup and configuration are unchanged by the update');
is($node->safe_psql('old', 'SELECT count(*) FROM order_flow.verify_audit()'), '0',
	'the audit chains still verify');

# ------------------------------------- the same objects as a fresh install
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION order_flow');

# One line per extension member (and per column, trigger, constraint,
# index, privilege, comment of one), in a form that does not depend on OIDs
# (privileges in a fixed order: the order of an ACL means nothing).
my $fingerprint = q{
WITH m AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'order_flow' AND d.deptype = 'e'
), rels AS (
    SELECT c.oid, c.relname FROM pg_class c JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
)
SELECT line FROM (
    SELECT 'function ' || p.oid::regprocedure || ' returns ' || pg_get_function_result(p.oid)
           || ' ' || p.prokind::text || p.provolatile::text || p.proparallel::text || p.prosecdef::text || p.proisstrict::text
           || ' cost ' || p.procost || ' rows ' || p.prorows || ' config ' || coalesce(p.proconfig::text, '-')
           || ' acl ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(p.proacl) x), '-') || ' src ' || md5(p.prosrc || coalesce(p.probin, ''))
           || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '-') AS line
      FROM pg_proc p JOIN m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT 'aggregate ' || a.aggfnoid::regprocedure || ' ' || a.aggtransfn::regproc || ' '
           || a.aggfinalfn::regproc || ' ' || a.aggcombinefn::regproc || ' ' || a.aggserialfn::regproc || ' '
           || a.aggdeserialfn::regproc || ' ' || a.aggtranstype::regtype || ' ' || a.aggtransspace
      FROM pg_aggregate a JOIN m ON m.classid = 'pg_proc'::regclass AND m.objid = a.aggfnoid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' ' || c.relkind::text || ' ' || coalesce(c.reloptions::text, '-')
           || ' acl ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(c.relacl) x), '-') || ' rls ' || c.relrowsecurity::text
           || ' replica identity ' || c.relreplident::text
           || ' comment ' || coalesce(obj_description(c.oid, 'pg_class'), '-')
           || CASE WHEN c.relkind = 'v' THEN ' view ' || md5(pg_get_viewdef(c.oid)) ELSE '' END
      FROM pg_class c JOIN rels r ON r.oid = c.oid
    UNION ALL
    SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || a.attnum || ' '
           || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text || ' '
           || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-') || ' acl ' || coalesce((SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x), '-')
           || ' comment ' || coalesce(col_description(a.attrelid, a.attnum), '-')
      FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL
    SELECT 'constraint ' || co.conrelid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
      FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid)
      FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || po.polrelid::regclass || ' ' || po.polname || ' ' || po.polcmd::text || ' '
           || coalesce(pg_get_expr(po.polqual, po.polrelid), '-')
      FROM pg_policy po JOIN rels r ON r.oid = po.polrelid
    UNION ALL
    SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text || ' ' || t.typlen || ' '
           || coalesce(obj_description(t.oid, 'pg_type'), '-')
      FROM pg_type t JOIN m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT 'operator ' || o.oid::regoperator || ' ' || o.oprcode::regproc
      FROM pg_operator o JOIN m ON m.classid = 'pg_operator'::regclass AND m.objid = o.oid
    UNION ALL
    SELECT 'opclass ' || oc.opcname || ' ' || am.amname
      FROM pg_opclass oc JOIN pg_am am ON am.oid = oc.opcmethod
      JOIN m ON m.classid = 'pg_opclass'::regclass AND m.objid = oc.oid
    UNION ALL
    SELECT 'cast ' || c.castsource::regtype || ' -> ' || c.casttarget::regtype || ' ' || c.castcontext::text
      FROM pg_cast c JOIN m ON m.classid = 'pg_cast'::regclass AND m.objid = c.oid
    UNION ALL
    SELECT 'member ' || pg_describe_object(m.classid, m.objid, 0) FROM m
    UNION ALL
    SELECT 'config ' || c.oid::regclass::text
      FROM pg_extension e, unnest(e.extconfig) x(oid) JOIN pg_class c ON c.oid = x.oid
     WHERE e.extname = 'order_flow'
) q ORDER BY line};

my $fp_old   = $node->safe_psql('old',   $fingerprint);
my $fp_fresh = $node->safe_psql('fresh', $fingerprint);
my @old   = split /\n/, $fp_old;
my @fresh = split /\n/, $fp_fresh;
cmp_ok(scalar(@fresh), '>', 300, 'the fingerprint covers the extension (' . scalar(@fresh) . ' lines)');
my %in_old   = map { $_ => 1 } @old;
my %in_fresh = map { $_ => 1 } @fresh;
my @missing = grep { !$in_old{$_} } @fresh;
my @extra   = grep { !$in_fresh{$_} } @old;
is(scalar(@missing), 0, 'the updated database has every object of a fresh install')
  or diag(join("\n", 'missing after update:', @missing[0 .. ($#missing < 9 ? $#missing : 9)]));
is(scalar(@extra), 0, 'the updated database has no object a fresh install lacks')
  or diag(join("\n", 'left over after update:', @extra[0 .. ($#extra < 9 ? $#extra : 9)]));

# --------------------------------------------- the new version applies at once
($rc, $out, $err) = $node->psql('old',
	q{SELECT order_flow.record('4', 'payment', '{"amount": 5, "due_date": "soon"}')});
isnt($rc, 0, 'after the update record() refuses a payment whose due_date is not a date');
like($err, qr/due_date must be a date/, '... saying why');

# ... and the old data goes on
($rc, $out, $err) = $node->psql('old', q{
UPDATE orders SET status = 'finance_approved' WHERE id = 1;
SELECT order_flow.transition('orders', '3', 'warehouse_confirmed');
SELECT order_flow.record('2', 'payment', '{"amount": 40, "due_date": "2026-03-01", "paid_date": "2026-03-05"}');
});
is($rc, 0, 'transitions and records continue after the update') or diag($err);
is($node->safe_psql('old', 'SELECT count(*) FROM order_flow.verify_audit()'), '0',
	'the continued chains verify');

# a table managed before 1.2 gets 1.2's DELETE and TRUNCATE triggers
($rc, $out, $err) = $node->psql('old', q{SET order_flow.reason = 'duplicate'; DELETE FROM orders WHERE id = 5});
is($rc, 0, 'DELETE of an order of a table managed before the update') or diag($err);
is($node->safe_psql('old', q{SELECT action || ' ' || from_state || ' ' || (details->>'note')
                               FROM order_flow.audit_log WHERE order_key = '5' ORDER BY seq DESC LIMIT 1}),
	'deleted quoted duplicate', '... is recorded as a deleted event');
($rc, $out, $err) = $node->psql('old', 'TRUNCATE orders');
like($err, qr/cannot truncate orders: it is managed by order_flow/, 'TRUNCATE of that table is refused');
($rc, $out, $err) = $node->psql('old', q{ALTER TABLE orders DISABLE TRIGGER order_flow_transition;
                                         UPDATE orders SET status = 'paid' WHERE id = 4;
                                         ALTER TABLE orders ENABLE TRIGGER order_flow_transition;
                                         UPDATE orders SET status = 'archived' WHERE id = 4});
like($err, qr/order 4 is "paid" in public.orders but "contract_signed" in its audit chain/,
	'a row changed behind the trigger of a table managed before the update cannot move on');
$node->safe_psql('old', q{UPDATE orders SET status = 'contract_signed' WHERE id = 4});
my $facts = q{SELECT md5(string_agg(f::text, ',' ORDER BY f.order_key)) FROM order_flow.order_fact f};
# 1.2 folds the metrics by the scheduler, within about a second: catch up first
$node->safe_psql('old', 'SELECT order_flow.metrics_fold(true)');
my $rollup = $node->safe_psql('old', $facts);
$node->safe_psql('old', 'SELECT order_flow.metrics_rebuild()');
is($node->safe_psql('old', $facts), $rollup,
	'the rollup kept across the update equals metrics_rebuild()');
is($node->safe_psql('old', q{SELECT orders FROM order_flow.kpi('-infinity', 'infinity')}), '4',
	'kpi() reads the updated database (4 orders signed)');

# ------------------------------------------- from every released version
# 1.1 is released too: a database created there updates to the same objects
$node->safe_psql('postgres', 'CREATE DATABASE old11');
$node->safe_psql('old11', q{CREATE EXTENSION order_flow VERSION '1.1'});
$node->safe_psql('old11', q{
CREATE TABLE orders (id int PRIMARY KEY, customer text, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders', customer_column => 'customer');
INSERT INTO orders (id, customer) SELECT g, 'C' || g FROM generate_series(1, 3) g;
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id = 1;
SELECT order_flow.record('1', 'payment', '{"amount": 10, "due_date": "2026-02-01", "paid_date": "2026-02-03"}');
});
# 1.1 built the kpi() cache in the session's time zone: here Asia/Shanghai,
# for every session of the database (the scheduler's too), where an order
# shipped at 20:00 UTC on its promised date was late.  1.2 keys the cache
# by the business time zone: the same zone keeps the states, another one
# rebuilds them and is never served the old ones.
$node->safe_psql('old11', q{
ALTER DATABASE old11 SET TimeZone = 'Asia/Shanghai';
ALTER DATABASE old11 SET order_flow.business_time_zone = 'Asia/Shanghai';
});
$node->safe_psql('old11', march_order_sql('past', 100));
$node->safe_psql('old11', 'SELECT order_flow.kpi_cache_refresh(1000)');
my $march = q{SELECT on_time_rate FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')};
is($node->safe_psql('old11', $march), '0', '1.1: the order was late in Asia/Shanghai');
my $before11 = $node->safe_psql('old11', $content);
($rc, $out, $err) = $node->psql('old11', 'ALTER EXTENSION order_flow UPDATE');
is($rc, 0, 'a database created at 1.1 updates') or diag($err);
is($node->safe_psql('old11', q{SELECT extversion FROM pg_extension WHERE extname = 'order_flow'}),
	$default, "... to $default");
is($node->safe_psql('old11', $content), $before11, '... keeping its orders, events and configuration');
my @old11 = split /\n/, $node->safe_psql('old11', $fingerprint);
my %in_old11 = map { $_ => 1 } @old11;
@missing = grep { !$in_old11{$_} } @fresh;
@extra   = grep { !$in_fresh{$_} } @old11;
is(scalar(@missing) + scalar(@extra), 0, 'updated from 1.1, it has exactly the objects of a fresh install')
  or diag(join("\n", 'missing:', @missing[0 .. ($#missing < 9 ? $#missing : 9)],
                    'left over:', @extra[0 .. ($#extra < 9 ? $#extra : 9)]));
($rc, $out, $err) = $node->psql('old11', q{UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 1});
is($rc, 0, 'its orders move on after the update') or diag($err);
is($node->safe_psql('old11', 'SELECT count(*) FROM order_flow.verify_audit()'), '0',
	'... and its chains verify');
is($node->safe_psql('old11', q{SELECT string_agg(DISTINCT time_zone, ',') FROM order_flow.kpi_month
                                WHERE month_start = '2024-03-01 00:00+00'}),
	'Asia/Shanghai', 'the cache built at 1.1 in the business time zone is kept');
is($node->safe_psql('old11', 'SET TimeZone = UTC; SELECT order_flow.kpi_cache_refresh(1000)'), '0',
	'... served to a session in another time zone: nothing to rebuild');
is($node->safe_psql('old11', "SET TimeZone = 'America/New_York'; $march"), '0',
	'... which reads the business zone\'s answer');
$node->safe_psql('old11', q{ALTER DATABASE old11 SET order_flow.business_time_zone = 'UTC'});
is($node->safe_psql('old11', $march), '1',
	'with the business zone set to UTC, kpi() answers for UTC at once (the old states are not served)');
$node->safe_psql('old11', 'SELECT order_flow.kpi_cache_refresh(1000)');
is($node->safe_psql('old11', q{SELECT string_agg(DISTINCT time_zone, ',') FROM order_flow.kpi_month}),
	'UTC', '... and the refresh rebuilds every month in UTC');
is($node->safe_psql('old11', $march), '1', '... whose states give the same answer');

# an edge of no department: "no one" to 1.1's allowed_transitions(), "anyone"
# to the trigger; 1.2 refuses it and the update makes it what it did: anyone
$node->safe_psql('postgres', 'CREATE DATABASE old11e');
$node->safe_psql('old11e', q{CREATE EXTENSION order_flow VERSION '1.1'});
$node->safe_psql('old11e', q{UPDATE order_flow.transition_rule SET performed_by = '{}'
                              WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted'});
$node->safe_psql('old11e', 'ALTER EXTENSION order_flow UPDATE');
is($node->safe_psql('old11e', q{SELECT coalesce(performed_by::text, 'NULL') FROM order_flow.transition_rule
                                 WHERE workflow = 'b2b_order' AND from_state = 'inquiry' AND to_state = 'quoted'}),
	'NULL', 'the update turns an edge\'s empty performed_by into NULL (anyone, as the trigger read it)');

# every released script is installed, and every one is reachable: each
# released version has a path to the default version
my @versions = split /\n/, $node->safe_psql('postgres',
	q{SELECT version FROM pg_available_extension_versions WHERE name = 'order_flow' ORDER BY version});
is_deeply(\@versions, ['1.0', '1.1', $default], 'the installable versions are 1.0, 1.1 and ' . $default);
for my $v (@versions)
{
	next if $v eq $default;
	is($node->safe_psql('postgres', qq{SELECT count(*) FROM pg_extension_update_paths('order_flow')
	                                     WHERE source = '$v' AND target = '$default' AND path IS NOT NULL}),
		'1', "$v has an update path to $default");
}

$node->stop;
done_testing();
