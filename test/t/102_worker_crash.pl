# 102_worker_crash.pl -- the escalation worker dies mid-sweep (SPEC 3.4:
# "survives its own crash and a postmaster restart without losing or
# doubling an escalation"; SPEC 5).
#
# 1200 notifications fall due at the same moment; the scheduler escalates
# them in batches of 100 (order_flow.batch_size), one transaction each.
#   Crash 1: kill -9 of the scheduler once the first batches have committed
#            (the postmaster resets everything and recovers).
#   Crash 2: the same with an immediate shutdown, then a start.
# After each recovery, with no manual sweep:
#   - one scheduler serves the database again and finishes the work: no
#     level-1 notification stays pending past its deadline;
#   - every level-1 notification was escalated exactly once: one level-2
#     child each, one escalate event each, no duplicates;
#   - verify_audit() finds nothing.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $orders = 400;              # per crash; 3 notifications each
my $total  = 3 * $orders;

my $node = PostgreSQL::Test::Cluster->new('worker_crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
max_worker_processes = 16
restart_after_crash = on
order_flow.batch_size = 100
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', qq{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders (id) SELECT g FROM generate_series(1, 2 * $orders) g;
UPDATE orders SET status = 'quoted';
UPDATE order_flow.transition_rule SET ack_within = '3 seconds'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
});

my $level2_q = q{SELECT count(*) FROM order_flow.notification WHERE level = 2 AND order_key::int BETWEEN %d AND %d};

# scheduler_pid(): the pid of app's scheduler (waits for it)
sub scheduler_pid
{
	$node->poll_query_until('app', q{SELECT count(*) = 1 FROM pg_stat_activity
	                                  WHERE backend_type = 'order_flow scheduler' AND datname = 'app'})
	  or die 'no scheduler';
	return $node->safe_psql('app', q{SELECT pid FROM pg_stat_activity
	                                  WHERE backend_type = 'order_flow scheduler' AND datname = 'app'});
}

# sign(from, to): move those orders to contract_signed; 3 notifications each,
# all due at one instant
sub sign
{
	my ($from, $to) = @_;
	$node->safe_psql('app', "UPDATE orders SET status = 'contract_signed' WHERE id BETWEEN $from AND $to");
	# all due at the same instant, 2 s from now
	$node->safe_psql('app', "UPDATE order_flow.notification SET deadline = statement_timestamp() + interval '2 seconds'
	                          WHERE order_key::int BETWEEN $from AND $to");
	is($node->safe_psql('app', "SELECT count(*) FROM order_flow.notification WHERE order_key::int BETWEEN $from AND $to"),
		3 * ($to - $from + 1), "orders $from..$to signed: " . 3 * ($to - $from + 1) . ' notifications');
}

# midway(from, to): wait until the first batches of the sweep have
# committed; returns the level-2 count seen
sub midway
{
	my ($from, $to) = @_;
	my $t0 = time;
	while (time - $t0 < 60)
	{
		my $n = $node->safe_psql('app', sprintf($level2_q, $from, $to));
		return $n if $n > 0;
		usleep(20_000);
	}
	return 0;
}

# check(label, from, to): after recovery the worker finishes; each level-1
# notification escalated exactly once; chains intact
sub check
{
	my ($label, $from, $to) = @_;
	my $n = 3 * ($to - $from + 1);
	ok( $node->poll_query_until('app', qq{
			SELECT count(*) = 0 FROM order_flow.notification
			 WHERE level = 1 AND status = 'pending' AND order_key::int BETWEEN $from AND $to}),
		"$label: the restarted worker escalates every remaining notification");
	my @r = split /\|/, $node->safe_psql('app', qq{
		SELECT concat_ws('|',
		  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'order_flow scheduler' AND datname = 'app'),
		  (SELECT string_agg(level || ':' || status || ':' || c, ',' ORDER BY level)
		     FROM (SELECT level, status, count(*) AS c FROM order_flow.notification
		            WHERE order_key::int BETWEEN $from AND $to GROUP BY level, status) x),
		  (SELECT count(*) FROM (SELECT p.id FROM order_flow.notification p
		                           LEFT JOIN order_flow.notification c ON c.parent_id = p.id
		                          WHERE p.level = 1 AND p.order_key::int BETWEEN $from AND $to
		                          GROUP BY p.id HAVING count(c.id) <> 1) x),
		  (SELECT count(*) || '/' || count(DISTINCT details->>'escalated_from') || '/' || string_agg(DISTINCT actor, ',')
		     FROM order_flow.audit_log WHERE action = 'escalate' AND order_key::int BETWEEN $from AND $to),
		  (SELECT count(*) FROM order_flow.outbox o JOIN order_flow.notification n ON n.id = o.notification_id
		    WHERE n.level = 2 AND n.order_key::int BETWEEN $from AND $to),
		  (SELECT count(*) FROM order_flow.verify_audit()))});
	is($r[0], '1', "$label: one scheduler serves the database");
	is($r[1], "1:escalated:$n,2:pending:$n", "$label: $n escalated at level 1, $n pending at level 2");
	is($r[2], '0', "$label: every level-1 notification has exactly one level-2 child");
	is($r[3], "$n/$n/order_flow.scheduler", "$label: $n escalate events, one per notification, by the scheduler");
	is($r[4], $n, "$label: one outbox row per escalation");
	is($r[5], '0', "$label: every audit chain verifies");
}

# ------------------------------------------------------------ crash 1: kill -9
my $pid = scheduler_pid();
sign(1, $orders);
my $seen = midway(1, $orders);
ok(kill('KILL', $pid), "kill -9 the scheduler (pid $pid) mid-sweep");
cmp_ok($seen, '>', 0, "killed after the first batches committed ($seen escalated)");
is($seen % 100, 0, 'the batches commit 100 escalations each');
cmp_ok($seen, '<', $total, 'and before the sweep finished');
$node->poll_query_until('app', 'SELECT 1', '1') or die 'server did not come back';
like(slurp_file($node->logfile), qr/order_flow scheduler.*was terminated by signal 9/,
	'the postmaster saw the scheduler die');
isnt(scheduler_pid(), $pid, 'a new scheduler runs');
check('after kill -9', 1, $orders);

# ------------------------------------------------- crash 2: immediate stop
sign($orders + 1, 2 * $orders);
$seen = midway($orders + 1, 2 * $orders);
$node->stop('immediate');
cmp_ok($seen, '>', 0, "immediate shutdown after the first batches committed ($seen escalated)");
is($seen % 100, 0, 'the batches commit 100 escalations each');
cmp_ok($seen, '<', $total, 'and before the sweep finished');
$node->start;
check('after an immediate shutdown', $orders + 1, 2 * $orders);
check(q{the first crash's orders still}, 1, $orders);

# transitions and manual sweeps work on
is($node->safe_psql('app', q{
	UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 1;
	SELECT order_flow.escalate_due(now() + interval '31 minutes') >= 6;
	}), 't', 'transitions and manual sweeps work after the crashes');
is($node->safe_psql('app', 'SELECT count(*) FROM order_flow.verify_audit()'), '0', 'and the chains still verify');

$node->stop;
done_testing();
