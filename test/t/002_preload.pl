# 002_preload.pl -- order_flow without shared_preload_libraries.
#
# CREATE EXTENSION must succeed (no FATAL from settings only a preloaded
# library may define) with a WARNING that names shared_preload_libraries;
# the transition path, the audit chain and configuration changes keep
# working without the preload.  After adding the preload and restarting,
# the same database works on, with no warning on a new CREATE EXTENSION.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'), '',
	'server runs without shared_preload_libraries');

$node->safe_psql('postgres', 'CREATE DATABASE app');
my ($rc, $out, $err) = $node->psql('app', 'CREATE EXTENSION order_flow');
is($rc, 0, 'CREATE EXTENSION succeeds without the preload') or diag($err);
like($err, qr/WARNING:.*shared_preload_libraries/s,
	'CREATE EXTENSION warns, naming shared_preload_libraries');
unlike($err, qr/(ERROR|FATAL|PANIC)/, 'no error on CREATE EXTENSION');

# every setting exists without the preload: SHOW and pg_settings answer
is($node->safe_psql('app', q{LOAD 'order_flow'; SHOW order_flow.naptime}), '1min',
	'SHOW order_flow.naptime answers without the preload');
is($node->safe_psql('app', q{LOAD 'order_flow';
	SELECT string_agg(name || '=' || context, ',' ORDER BY name) FROM pg_settings
	 WHERE name IN ('order_flow.database', 'order_flow.naptime', 'order_flow.enabled')}),
	'order_flow.database=sighup,order_flow.enabled=sighup,order_flow.naptime=sighup',
	'the worker settings are listed, applied by a reload');
# a list that does not parse is refused, not logged and ignored
($rc, $out, $err) = $node->psql('app', q{LOAD 'order_flow'; ALTER SYSTEM SET order_flow.database = 'app, "unclosed'});
isnt($rc, 0, 'ALTER SYSTEM refuses an order_flow.database that does not parse');
like($err, qr/invalid value for parameter "order_flow.database".*List syntax is invalid/s, '... saying why');
($rc, $out, $err) = $node->psql('app', q{LOAD 'order_flow'; ALTER SYSTEM SET order_flow.database = 'app, "Other DB"'});
is($rc, 0, 'a list of names, one quoted, is accepted') or diag($err);
$node->safe_psql('app', q{LOAD 'order_flow'; ALTER SYSTEM RESET order_flow.database});

# the backend that created the extension keeps working, and so do new ones
($rc, $out, $err) = $node->psql('app', q{
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders (id) VALUES (1), (2);
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id = 1;
SELECT order_flow.transition('orders', '2', 'cancelled', 'lost to a competitor');
});
is($rc, 0, 'manage(), INSERT, UPDATE and transition() work without the preload')
  or diag($err);

is($node->safe_psql('app', q{SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM orders}),
	'1:contract_signed,2:cancelled', 'orders moved');
is($node->safe_psql('app', q{SELECT string_agg(order_key || '/' || seq || '/' || action || '/' || to_state,
                                                ',' ORDER BY order_key, seq)
                              FROM order_flow.audit_log WHERE order_key IN ('1', '2')}),
	'1/1/created/inquiry,1/2/transition/quoted,1/3/transition/contract_signed,'
	  . '2/1/created/inquiry,2/2/transition/quoted,2/3/transition/cancelled',
	'every transition is audited');
is($node->safe_psql('app', q{SELECT count(*) FROM order_flow.notification WHERE order_key = '1'}),
	'3', 'contract_signed opened its notifications (warehouse, finance, logistics)');

# an invalid edge is still refused with 23514
($rc, $out, $err) = $node->psql('app', q{
\set VERBOSITY verbose
UPDATE orders SET status = 'paid' WHERE id = 1;
});
isnt($rc, 0, 'an invalid edge fails without the preload');
like($err, qr/23514/, '... with SQLSTATE 23514');

# a configuration change is seen by another (new) backend
($rc, $out, $err) = $node->psql('app', q{
DELETE FROM order_flow.transition_rule
 WHERE workflow = 'b2b_order' AND from_state = 'contract_signed' AND to_state = 'on_hold';
});
is($rc, 0, 'configuration change without the preload') or diag($err);
($rc, $out, $err) = $node->psql('app', q{
\set VERBOSITY verbose
SELECT order_flow.transition('orders', '1', 'on_hold', 'wait');
});
isnt($rc, 0, 'the deleted edge is refused by a new backend');
like($err, qr/23514/, '... with SQLSTATE 23514');

is($node->safe_psql('app', 'SELECT count(*) FROM order_flow.verify_audit()'),
	'0', 'audit chains verify without the preload');

# with the preload added, the same database works on
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'order_flow'");
$node->restart;
is($node->safe_psql('app', 'SHOW shared_preload_libraries'), 'order_flow',
	'restarted with the preload');
($rc, $out, $err) = $node->psql('app', q{
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 1;
});
is($rc, 0, 'transitions work after adding the preload') or diag($err);
is($node->safe_psql('app', 'SELECT count(*) FROM order_flow.verify_audit()'),
	'0', 'audit chains verify after adding the preload');

$node->safe_psql('postgres', 'CREATE DATABASE app2');
($rc, $out, $err) = $node->psql('app2', 'CREATE EXTENSION order_flow');
is($rc, 0, 'CREATE EXTENSION with the preload') or diag($err);
unlike($err, qr/WARNING/, '... and no warning');

$node->stop;
done_testing();
