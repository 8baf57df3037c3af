# 103_standby.pl -- the escalation worker and a streaming standby (SPEC 3.4:
# the worker "does nothing on a hot standby"; SPEC 6: reports can run on a
# streaming replica).
#
# A primary and a streaming standby, both with order_flow preloaded:
#   - the standby runs no order_flow launcher or scheduler;
#   - the primary's worker escalates a notification with a 2-second window;
#     the standby sees exactly the replicated rows (the same escalations,
#     nothing of its own), and its views read them;
#   - a manual sweep on the standby is refused (read-only transaction);
#   - with order_flow.enabled = off on the primary (reload), nothing
#     escalates anywhere while deadlines pass, but refused attempts are still
#     recorded (the setting is "whether the background worker escalates and
#     reminds"); turned back on, the primary's worker catches up and the
#     standby follows;
#   - promoted, the standby starts its own worker and escalates.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
max_worker_processes = 16
});
$primary->start;

$primary->safe_psql('postgres', 'CREATE DATABASE app');
$primary->safe_psql('app', q{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders (id) SELECT g FROM generate_series(1, 3) g;
UPDATE orders SET status = 'quoted';
UPDATE order_flow.transition_rule SET ack_within = '2 seconds'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
});

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# wait_until(node, query, seconds): true when the query returned t in time
sub wait_until
{
	my ($node, $query, $limit) = @_;
	return defined poll_until($node, 'app', $query, $limit);
}

my $workers_q = q{SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'order_flow%'};
# level2(node, order): how many level-2 notifications that order has
sub level2
{
	my ($node, $order) = @_;
	return $node->safe_psql('app',
		"SELECT count(*) FROM order_flow.notification WHERE order_key = '$order' AND level = 2");
}

is($standby->safe_psql('app', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
is($standby->safe_psql('app', 'SHOW shared_preload_libraries'), 'order_flow', 'with order_flow preloaded');
ok($primary->poll_query_until('app', q{SELECT count(*) = 2 FROM pg_stat_activity
                                        WHERE backend_type IN ('order_flow launcher', 'order_flow scheduler')}),
	'the primary runs a launcher and a scheduler');

# ------------------------------------------------ the primary escalates
$primary->safe_psql('app', q{UPDATE orders SET status = 'contract_signed' WHERE id = 1});
ok($primary->poll_query_until('app',
		q{SELECT count(*) = 3 FROM order_flow.notification WHERE order_key = '1' AND level = 2}),
	q{the primary's worker escalates order 1's notifications});
$primary->wait_for_catchup($standby);
my $rows_q = q{SELECT string_agg(concat_ws(':', id, level, status, parent_id, deadline), ',' ORDER BY id)
                 FROM order_flow.notification};
is($standby->safe_psql('app', $rows_q), $primary->safe_psql('app', $rows_q),
	q{the standby has exactly the primary's notification rows});
my $events_q = q{SELECT string_agg(concat_ws(':', order_key, seq, action, actor), ',' ORDER BY id)
                   FROM order_flow.audit_log WHERE action = 'escalate'};
is($standby->safe_psql('app', $events_q), $primary->safe_psql('app', $events_q),
	'and exactly its escalate events (by order_flow.scheduler)');
is($standby->safe_psql('app', q{SELECT count(*) || ':' || min(level) FROM order_flow.pending_acks WHERE order_key = '1'}),
	'3:2', 'pending_acks reads on the standby');
is($standby->safe_psql('app', 'SELECT count(*) FROM order_flow.verify_audit()'), '0',
	'verify_audit() runs on the standby and finds nothing');
is($standby->safe_psql('app', $workers_q), '0', 'no order_flow launcher or scheduler on the standby');
is($standby->safe_psql('app', 'SELECT count(*) FROM order_flow.worker_status() WHERE pid IS NOT NULL'), '0',
	'worker_status() on the standby shows no running scheduler');

my ($rc, $out, $err) = $standby->psql('app', q{SELECT order_flow.escalate_due(now() + interval '1 hour')});
isnt($rc, 0, 'a manual sweep on the standby fails');
like($err, qr/read-only transaction/, 'because the standby is read-only');

# ------------------------------------------------ order_flow.enabled = off
$primary->safe_psql('postgres', 'ALTER SYSTEM SET order_flow.enabled = off');
$primary->reload;
# the scheduler stays (it still records refused attempts) but escalates nothing
ok($primary->poll_query_until('app', q{SELECT count(*) = 1 FROM pg_stat_activity
                                        WHERE backend_type = 'order_flow scheduler'}),
	q{disabled: the primary's scheduler keeps running for refused attempts});
$primary->safe_psql('app', 'SELECT pg_sleep(1)');    # let it take the reload
$primary->safe_psql('app', q{UPDATE orders SET status = 'contract_signed' WHERE id = 2});
my $deadline = $primary->safe_psql('app', q{SELECT max(deadline) FROM order_flow.notification WHERE order_key = '2'});
# let the 2-second deadline pass by 1 more second
$primary->poll_query_until('app', qq{SELECT now() > '$deadline'::timestamptz + interval '1 second'})
  or die 'clock stuck';
is(level2($primary, '2'), '0', 'disabled: the overdue notifications of order 2 are not escalated on the primary');
$primary->wait_for_catchup($standby);
is(level2($standby, '2'), '0', 'nor on the standby');
is($standby->safe_psql('app', q{SELECT count(*) || ':' || bool_and(overdue) FROM order_flow.pending_acks
                                 WHERE order_key = '2'}),
	'3:true', 'the standby shows them pending and overdue');
is($standby->safe_psql('app', $workers_q), '0', 'the standby still runs no worker');
# only escalation and reminders are switched off: refused attempts are still recorded
($rc, $out, $err) = $primary->psql('app', q{UPDATE orders SET status = 'archived' WHERE id = 3});
like($err, qr/invalid transition/, 'disabled: an invalid edge is refused');
ok(wait_until($primary, q{SELECT count(*) = 1 FROM order_flow.refused_attempt WHERE order_key = '3'}, 3),
	'disabled: the refused attempt still reaches order_flow.refused_attempt within a few seconds');

# ------------------------------------------------ back on
$primary->safe_psql('postgres', 'ALTER SYSTEM RESET order_flow.enabled');
$primary->reload;
ok($primary->poll_query_until('app',
		q{SELECT count(*) = 3 FROM order_flow.notification WHERE order_key = '2' AND level = 2}),
	'enabled again: the primary catches up with order 2');
$primary->wait_for_catchup($standby);
is(level2($standby, '2'), '3', 'and the standby follows');
is($standby->safe_psql('app', $events_q), $primary->safe_psql('app', $events_q),
	'the standby has the same escalate events as the primary, no more');

# ------------------------------------------------ promotion
$primary->safe_psql('app', q{UPDATE orders SET status = 'contract_signed' WHERE id = 3});
$primary->wait_for_catchup($standby);
$primary->stop('immediate');
is(level2($standby, '3'), '0', 'order 3 is not escalated yet');
$standby->promote;
ok($standby->poll_query_until('app', q{SELECT count(*) = 3 FROM order_flow.notification
                                        WHERE order_key = '3' AND level = 2}),
	q{promoted, the former standby's own worker escalates order 3});
is($standby->safe_psql('app', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'order_flow scheduler'}),
	'1', 'it runs a scheduler now');
is($standby->safe_psql('app', q{SELECT count(*) FROM (SELECT parent_id FROM order_flow.notification
                                 WHERE level = 2 GROUP BY parent_id HAVING count(*) > 1) x}),
	'0', 'no notification was escalated twice across the failover');
is($standby->safe_psql('app', 'SELECT count(*) FROM order_flow.verify_audit()'), '0', 'the chains verify');

$standby->stop;
done_testing();
