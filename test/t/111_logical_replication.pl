# 111_logical_replication.pl -- the supported logical replication setup:
# the managed table published together with the extension's tables that
# carry its history (tracked_order, audit_log, notification, outbox); the
# subscriber has the extension (its own catalogue) and does not manage the
# table.
#
#   - the subscriber's chains verify and equal the publisher's;
#   - its scheduler does not escalate the replicated notifications (the
#     publisher does), though they are overdue, and says so in the log;
#   - it still folds the replicated events into its own metrics rollup;
#   - a state the subscriber's catalogue lacks does not stop replication:
#     the name is added (with a warning) and later changes keep coming;
#   - the unsupported setups are told apart, not drifted into silently:
#     manage() of a subscribed table warns, and the trigger enabled ALWAYS
#     refuses to run for replicated rows (55000).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;
use Time::HiRes qw(usleep);

my $pub = PostgreSQL::Test::Cluster->new('publisher');
$pub->init(allows_streaming => 'logical');
$pub->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
order_flow.naptime = 1s
order_flow.enabled = off
});
$pub->start;

my $sub = PostgreSQL::Test::Cluster->new('subscriber');
$sub->init;
$sub->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
order_flow.naptime = 1s
});
$sub->start;

my $orders_ddl = q{CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry',
                                        customer text)};
$pub->safe_psql('postgres', 'CREATE DATABASE shop');
$pub->safe_psql('shop', qq{
CREATE EXTENSION order_flow;
$orders_ddl;
SELECT order_flow.manage('orders', customer_column => 'customer');
INSERT INTO orders (id, customer) SELECT g, 'customer ' || g FROM generate_series(1, 6) g;
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id <= 4;
CREATE PUBLICATION shop_pub FOR TABLE orders, order_flow.tracked_order, order_flow.audit_log,
    order_flow.notification, order_flow.outbox;
});

$sub->safe_psql('postgres', 'CREATE DATABASE replica');
$sub->safe_psql('replica', qq{
CREATE EXTENSION order_flow;
$orders_ddl;
});
my $connstr = $pub->connstr . ' dbname=shop';
$sub->safe_psql('replica', "CREATE SUBSCRIPTION shop_sub CONNECTION '$connstr' PUBLICATION shop_pub");
$sub->wait_for_subscription_sync($pub, 'shop_sub', 'replica');

my $digest = q{
SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
  SELECT format('a %s %s %s %s %s', order_key, seq, action, to_state, encode(hash, 'hex')) AS x FROM order_flow.audit_log
  UNION ALL SELECT format('t %s %s %s', order_key, state, last_seq) FROM order_flow.tracked_order
  UNION ALL SELECT format('n %s %s %s %s', id, order_key, department, status) FROM order_flow.notification
  UNION ALL SELECT format('o %s %s', id, status) FROM orders) q};
is($sub->safe_psql('replica', $digest), $pub->safe_psql('shop', $digest),
	'the subscriber has the orders, chains and notifications of the publisher');
is($sub->safe_psql('replica', 'SELECT count(*) FROM order_flow.verify_audit()'), '0',
	"the subscriber's chains verify");

# overdue notifications: the publisher (escalation off here) does not
# escalate them; the subscriber's scheduler must not either
$pub->safe_psql('shop', q{UPDATE order_flow.notification SET deadline = now() - interval '1 hour'
                           WHERE status = 'pending'});
$pub->wait_for_catchup('shop_sub');
ok(defined poll_until($sub, 'replica',
		q{SELECT count(*) > 0 FROM order_flow.notification WHERE status = 'pending' AND deadline < now()}, 30),
	'the overdue notifications reach the subscriber');
ok(defined wait_for_log($sub, qr/leaves escalation and reminders to the publisher/, 30),
	"the subscriber's scheduler says it leaves escalation to the publisher");
sleep(3);    # several scheduler passes
is($sub->safe_psql('replica', q{SELECT count(*) FROM order_flow.notification WHERE status <> 'pending' OR level > 1}),
	'0', '... and escalates nothing');
is($sub->safe_psql('replica', $digest), $pub->safe_psql('shop', $digest), '... so it stays equal to the publisher');

# the replicated events are folded into the subscriber's own rollup
ok(defined poll_until($sub, 'replica', q{SELECT count(*) = 6 FROM order_flow.order_fact}, 30),
	"the subscriber folds the replicated events into its metrics");

# a state the subscriber's catalogue lacks
$pub->safe_psql('shop', q{
BEGIN;
SELECT order_flow.create_status('credit_check', 'contract_signed', 'warehouse_confirmed');
INSERT INTO order_flow.state (workflow, state, category, owner_department, description)
VALUES ('b2b_order', 'credit_check', 'active', 'finance', 'Credit check');
INSERT INTO order_flow.transition_rule (workflow, from_state, to_state, performed_by)
VALUES ('b2b_order', 'contract_signed', 'credit_check', '{finance}'),
       ('b2b_order', 'credit_check', 'warehouse_confirmed', '{warehouse}');
COMMIT;
UPDATE orders SET status = 'credit_check' WHERE id = 1;
});
$pub->wait_for_catchup('shop_sub');
is($sub->safe_psql('replica', q{SELECT status FROM orders WHERE id = 1}), 'credit_check',
	'a state the subscriber does not know arrives all the same');
ok(defined wait_for_log($sub, qr/state name "credit_check" arrived by logical replication/, 10),
	'... and the subscriber warns that it added the name');
$pub->safe_psql('shop', q{UPDATE orders SET status = 'warehouse_confirmed' WHERE id IN (1, 2)});
$pub->wait_for_catchup('shop_sub');
is($sub->safe_psql('replica', q{SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM orders WHERE id <= 2}),
	'1:warehouse_confirmed,2:warehouse_confirmed', 'replication goes on');
is($sub->safe_psql('replica', $digest), $pub->safe_psql('shop', $digest), 'the subscriber still equals the publisher');
is($sub->safe_psql('replica', 'SELECT count(*) FROM order_flow.verify_audit()'), '0', '... and verifies');

# unsupported: managing the subscribed table on the subscriber
my ($rc, $out, $err) = $sub->psql('replica', q{BEGIN; SELECT order_flow.manage('orders'); ROLLBACK});
like($err, qr/WARNING:.*rows of (public\.)?orders arrive by logical replication/s,
	'manage() of a table that receives replicated rows warns');

# unsupported: the trigger enabled ALWAYS runs in the apply worker
$sub->safe_psql('postgres', 'CREATE DATABASE scratch');
$sub->safe_psql('scratch', q{
CREATE EXTENSION order_flow;
CREATE TABLE t (id int PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('t');
INSERT INTO t (id) VALUES (1);
ALTER TABLE t ENABLE ALWAYS TRIGGER order_flow_transition;
});
($rc, $out, $err) = $sub->psql('scratch', q{SET session_replication_role = replica;
                                             UPDATE t SET status = 'quoted' WHERE id = 1});
like($err, qr/ERROR:.*does not run for replicated rows.*HINT:.*Do not ENABLE ALWAYS/s,
	'the trigger enabled ALWAYS refuses a replicated row (55000), with the way out');

$sub->stop;
$pub->stop;
done_testing();

# wait_for_log(node, regex, seconds): defined when the server log matches
sub wait_for_log
{
	my ($node, $re, $limit) = @_;
	for (my $i = 0; $i < $limit * 10; $i++)
	{
		return 1 if slurp_file($node->logfile) =~ $re;
		usleep(100_000);
	}
	return undef;
}
