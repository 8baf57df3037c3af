# 108_parallel_restore.pl -- pg_restore -j of a database with custom
# states (between shipped ones), a custom department with members, a
# station catalogue, a long history, in-flight notifications, and orders
# adopted by manage() that only have record() events.
#
# For -j 2 and -j 4, restored next to the source in the same cluster:
#   - pg_restore succeeds and reports no error;
#   - the process order is the source's: every state name at its sort
#     position, and orders read in the same order by ORDER BY status;
#   - counts of every extension table, the audit log with its hashes, the
#     notifications with their deadlines and the outbox are the source's;
#   - nothing is left waiting in restore_pending;
#   - the metrics rollup, caught up by metrics_fold(true), equals
#     metrics_rebuild() for every order -- including the customer of an
#     order that has only record() events;
#   - work continues: custom edges move orders on and the chains verify;
#   - a restore under REPEATABLE READ is refused, saying why.
# Before 1.2 pg_restore -j failed (the dictionary, the states and the
# managed table loaded in no fixed order: unknown state names, states at
# other sort positions, rules refused for states not loaded yet).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('parallel_restore');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
max_connections = 40
});
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

sub client { return client_program($node, @_); }

# ---------------------------------------------------------------- source
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL,
                     customer text, region text);
-- adopted by manage() without events; later only record()s
INSERT INTO orders VALUES (900, 'quoted', 'legacy one', 'north'),
                          (901, 'contract_signed', 'legacy two', 'south');
SELECT order_flow.manage('orders', customer_column => 'customer', attributes => ARRAY['region']::name[]);

BEGIN;
SELECT order_flow.create_status('quality_check', 'packed', 'shipped');
SELECT order_flow.create_status('credit_review', 'contract_signed', 'warehouse_confirmed');
INSERT INTO order_flow.department (department, name) VALUES ('quality', 'Quality control');
INSERT INTO order_flow.member (actor, department, level) VALUES ('qa1', 'quality', 1);
INSERT INTO order_flow.state (workflow, state, category, owner_department, description)
VALUES ('b2b_order', 'quality_check', 'active', 'quality', 'QC before shipping');
INSERT INTO order_flow.transition_rule (workflow, from_state, to_state, performed_by, notify,
                                        ack_within, origin_department)
VALUES ('b2b_order', 'packed', 'quality_check', '{warehouse}', '{quality}', '2 hours', 'warehouse'),
       ('b2b_order', 'quality_check', 'shipped', '{quality,logistics}', NULL, '15 minutes', NULL);
COMMIT;
INSERT INTO order_flow.sku (sku, barcode, name, weight_kg) VALUES ('S1', '6900000000017', 'Bolt M8', 0.05);
INSERT INTO order_flow.stock (sku, available) VALUES ('S1', 500);

INSERT INTO orders SELECT g, 'inquiry', 'customer ' || (g % 17), (ARRAY['north', 'south', 'east'])[1 + g % 3]
  FROM generate_series(1, 240) g;
UPDATE orders SET status = 'quoted' WHERE id <= 240;
UPDATE orders SET status = 'contract_signed' WHERE id <= 200;
UPDATE orders SET status = 'warehouse_confirmed' WHERE id <= 160;
UPDATE orders SET status = 'finance_approved' WHERE id <= 120;
UPDATE orders SET status = 'picking' WHERE id <= 100;
UPDATE orders SET status = 'packed' WHERE id <= 80;
UPDATE orders SET status = 'quality_check' WHERE id <= 50;
UPDATE orders SET status = 'shipped' WHERE id <= 20;
INSERT INTO order_flow.order_line (order_key, sku, qty) VALUES ('60', 'S1', 4);
SELECT order_flow.record('900', 'payment', '{"amount": 500, "due_date": "2030-01-31", "paid_date": "2030-01-20"}');
SELECT order_flow.record('901', 'complaint', '{"text": "late delivery"}');
SELECT order_flow.record('7', 'payment', '{"amount": 50}');
SELECT order_flow.metrics_fold(true);
});

# everything compared, one line per relation: counts, the audit log with its
# hashes, notifications with their deadlines, the outbox, the dictionary, the
# orders in process order
my $digest = q{
SELECT 'labels ' || string_agg(label || ':' || sort_position, ',' ORDER BY sort_position)
  FROM order_flow.status_label
UNION ALL
SELECT 'process order ' || md5(string_agg(id || ':' || status, ',' ORDER BY status, id)) FROM orders
UNION ALL
SELECT 'audit ' || count(*) || ' ' || md5(string_agg(format('%s %s %s %s %s %s %s', order_key, seq, action,
       from_state, to_state, occurred_at, encode(hash, 'hex')), ',' ORDER BY order_key, seq))
  FROM order_flow.audit_log
UNION ALL
SELECT 'heads ' || md5(string_agg(format('%s %s %s %s', order_key, state, last_seq, customer_key), ','
       ORDER BY order_key)) FROM order_flow.tracked_order
UNION ALL
SELECT 'notifications ' || count(*) || ' ' || md5(string_agg(format('%s %s %s %s %s %s', id, order_key,
       department, level, status, deadline), ',' ORDER BY id)) FROM order_flow.notification
UNION ALL
SELECT 'outbox ' || count(*) || ' ' || md5(string_agg(id || ' ' || payload::text, ',' ORDER BY id))
  FROM order_flow.outbox
UNION ALL
SELECT 'catalogue ' || (SELECT count(*) FROM order_flow.state) || ' ' || (SELECT count(*) FROM order_flow.transition_rule)
       || ' ' || (SELECT count(*) FROM order_flow.department) || ' ' || (SELECT count(*) FROM order_flow.member)
       || ' ' || (SELECT count(*) FROM order_flow.escalation_policy) || ' ' || (SELECT count(*) FROM order_flow.stock)
       || ' ' || (SELECT count(*) FROM order_flow.order_line)
};
my $source = $node->safe_psql('src', $digest);
like($source, qr/quality_check/, 'the source has its custom states');
cmp_ok($node->safe_psql('src', q{SELECT count(*) FROM order_flow.notification WHERE status = 'pending'}),
	'>', 0, 'the source has notifications in flight');

my $file = "$tmp/src.dump";
my ($ok, $out, $err) = client('pg_dump', '-Fc', '-f', $file, '-d', 'src');
ok($ok, 'pg_dump -Fc') or diag($err);

my $facts = q{SELECT string_agg(to_jsonb(f)::text, E'\n' ORDER BY f.order_key) FROM order_flow.order_fact f};

for my $j (2, 4)
{
	my $db = "restored_j$j";
	$node->safe_psql('postgres', qq{CREATE DATABASE $db});
	($ok, $out, $err) = client('pg_restore', '-j', $j, '-d', $db, $file);
	ok($ok && $err !~ /error/i, "pg_restore -j $j succeeds with no error") or diag($err);
	is($node->safe_psql($db, $digest), $source,
		"-j $j: same process order, counts, hashes, deadlines and catalogue as the source");
	is($node->safe_psql($db, 'SELECT count(*) FROM order_flow.restore_pending'), '0',
		"-j $j: no row left waiting for its parent");

	# the rollup is not dumped: the catch-up folds it again
	$node->safe_psql($db, 'SELECT order_flow.metrics_fold(true)');
	my $folded = $node->safe_psql($db, $facts);
	$node->safe_psql($db, 'SELECT order_flow.metrics_rebuild()');
	is($folded, $node->safe_psql($db, $facts), "-j $j: the rollup after the restore equals metrics_rebuild()");
	is($node->safe_psql($db, q{SELECT string_agg(order_key || '=' || customer_key || '/' || payments
	                                              || '/' || complaints, ',' ORDER BY order_key)
	                             FROM order_flow.order_fact WHERE order_key IN ('900', '901')}),
		'900=legacy one/1/0,901=legacy two/0/1',
		"-j $j: orders with only record() events keep their customer in the rollup");

	($ok, $out, $err) = $node->psql($db, q{
UPDATE orders SET status = 'quality_check' WHERE id = 60;
UPDATE orders SET status = 'shipped' WHERE id = 30;
SELECT order_flow.transition('orders', '900', 'contract_signed');
});
	is($ok, 0, "-j $j: custom edges and transitions work on") or diag($err);
	is($node->safe_psql($db, 'SELECT count(*) FROM order_flow.verify_audit()'), '0',
		"-j $j: the chains verify");
}

# a restore whose transactions take one snapshot cannot see what the other
# workers commit: refused, saying why, rather than leaving rows behind
$node->safe_psql('postgres', q{CREATE DATABASE restored_rr});
$node->safe_psql('postgres', q{ALTER DATABASE restored_rr SET default_transaction_isolation = 'repeatable read'});
($ok, $out, $err) = client('pg_restore', '-j', 2, '-d', 'restored_rr', $file);
like($err, qr/a restore of order_flow's tables needs READ COMMITTED, not repeatable read/,
	'a restore under REPEATABLE READ is refused, saying why');

$node->stop;
done_testing();
