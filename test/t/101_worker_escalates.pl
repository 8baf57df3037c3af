# 101_worker_escalates.pl -- the background worker (SPEC 3.3, 3.4, 4).
#
# With order_flow in shared_preload_libraries:
#   - pg_stat_activity shows one "order_flow launcher" and one
#     "order_flow scheduler" per database with the extension (application
#     name "order_flow scheduler", wait event type Extension while asleep);
#   - a notification with a 2-second window is escalated by the scheduler,
#     with no manual sweep, less than 1 s after its deadline (the commit that
#     opens a nearer deadline wakes it; it then sleeps exactly until the
#     deadline), audited with actor order_flow.scheduler; the chain verifies;
#   - a refused transition (invalid edge, in a transaction that rolls back)
#     appears in order_flow.refused_attempt within a few seconds;
#   - CREATE EXTENSION in a second database gets it served within a second
#     (also when the launcher had just looked at that database and found no
#     extension there), and that scheduler escalates too;
#   - a database named in order_flow.database that does not exist is logged
#     once, the server stays up and the named databases stay served; a
#     database no longer named loses its scheduler;
#   - DROP DATABASE of a served database is not blocked by its scheduler,
#     which is not started again.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;
use Time::HiRes qw(usleep time);

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
max_worker_processes = 16
});
$node->start;

# wait_until(db, query, seconds): poll every 50 ms; the seconds waited, or undef
sub wait_until
{
	my ($db, $query, $limit) = @_;
	return poll_until($node, $db, $query, $limit, 50);
}

# schedulers(db): how many schedulers serve database db
sub schedulers
{
	my ($db) = @_;
	return qq{(SELECT count(*) FROM pg_stat_activity
	            WHERE backend_type = 'order_flow scheduler' AND datname = '$db')};
}

# ------------------------------------------------------------ the processes
ok(defined wait_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'order_flow launcher'}, 10),
	'one order_flow launcher runs');

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders (id) SELECT g FROM generate_series(1, 3) g;
UPDATE orders SET status = 'quoted';
});
ok(defined wait_until('app', 'SELECT ' . schedulers('app') . ' = 1', 10),
	'a scheduler serves the database with the extension');
# (it may be busy with the moves just made: it is asked for when it next sleeps)
wait_until('app', q{SELECT wait_event_type = 'Extension' FROM pg_stat_activity
	WHERE backend_type = 'order_flow scheduler' AND datname = 'app'}, 10);
my @r = split /\|/, $node->safe_psql('app', q{
	SELECT concat_ws('|',
	  (SELECT application_name || '/' || coalesce(wait_event_type, '-') FROM pg_stat_activity
	    WHERE backend_type = 'order_flow scheduler' AND datname = 'app'),
	  (SELECT count(*) FROM order_flow.worker_status() w JOIN pg_stat_activity a ON a.pid = w.pid
	    WHERE w.dboid = (SELECT oid FROM pg_database WHERE datname = 'app')
	      AND a.backend_type = 'order_flow scheduler' AND NOT w.absent),
	  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'order_flow scheduler' AND datname = 'postgres'))});
is($r[0], 'order_flow scheduler/Extension',
	'the scheduler is named "order_flow scheduler" and waits with wait event type Extension');
is($r[1], '1', q{worker_status() names the scheduler's pid});
is($r[2], '0', 'no scheduler stays in a database without the extension');

# ------------------------------------------------ escalation by the worker
$node->safe_psql('app', q{
UPDATE order_flow.transition_rule SET ack_within = '2 seconds'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
});
my $sweeps_before = $node->safe_psql('app',
	q{SELECT sweeps FROM order_flow.worker_status() WHERE dboid = (SELECT oid FROM pg_database WHERE datname = 'app')});
$node->safe_psql('app', q{UPDATE orders SET status = 'contract_signed' WHERE id = 1});
is($node->safe_psql('app', q{
	SELECT count(*) || ' ' || bool_and(deadline - created_at BETWEEN interval '1.9 seconds' AND interval '2 seconds')
	  FROM order_flow.notification WHERE order_key = '1'}),
	'3 true', 'three notifications with a 2-second window');

my $waited = wait_until('app',
	q{SELECT count(*) = 3 FROM order_flow.notification WHERE order_key = '1' AND level = 2}, 15);
ok(defined $waited, 'the worker escalates them without a manual sweep')
  or diag($node->safe_psql('app', 'SELECT * FROM order_flow.worker_status()'));
@r = split /\|/, $node->safe_psql('app', q{
	SELECT concat_ws('|',
	  (SELECT extract(epoch FROM max(c.created_at - p.deadline)) || '/' || extract(epoch FROM min(c.created_at - p.deadline))
	     FROM order_flow.notification c JOIN order_flow.notification p ON p.id = c.parent_id
	    WHERE c.order_key = '1' AND c.level = 2),
	  (SELECT string_agg(DISTINCT p.status || '>' || c.status || ':' || c.escalates, ',')
	     FROM order_flow.notification c JOIN order_flow.notification p ON p.id = c.parent_id WHERE c.order_key = '1'),
	  (SELECT count(*) || ' ' || string_agg(DISTINCT actor, ',') || ' ' || string_agg(DISTINCT db_user, ',')
	     FROM order_flow.audit_log WHERE order_key = '1' AND action = 'escalate'),
	  (SELECT rolname FROM pg_roles WHERE oid = 10),
	  (SELECT count(*) FROM order_flow.verify_audit()),
	  (SELECT sweeps FROM order_flow.worker_status() WHERE dboid = (SELECT oid FROM pg_database WHERE datname = 'app')))});
my ($lag, $first) = split m{/}, $r[0];
cmp_ok($first, '>=', 0, "not before the deadline (earliest $first s after)");
cmp_ok($lag, '<', 1, "less than 1 s after the deadline (lag $lag s)");
is($r[1], 'escalated>pending:true', 'level 1 escalated, level 2 pending');
is($r[2], "3 order_flow.scheduler $r[3]", 'three escalate events by actor order_flow.scheduler');
is($r[4], '0', 'the chains verify');
cmp_ok($r[5], '>', $sweeps_before, 'worker_status() counts the sweeps');
# level 2 is due in 30 minutes: the scheduler sleeps again (at most naptime)
ok(defined wait_until('app', q{SELECT wait_event_type = 'Extension' FROM pg_stat_activity
                                WHERE backend_type = 'order_flow scheduler' AND datname = 'app'}, 5),
	'the scheduler sleeps again');

# ------------------------------------------------------ refused attempts
my $t0 = time;
my ($rc, $out, $err) = $node->psql('app', q{
BEGIN;
SET LOCAL order_flow.actor = 'mallory';
UPDATE orders SET status = 'paid' WHERE id = 2;
ROLLBACK;
});
like($err, qr/invalid transition/, 'the invalid edge is refused');
$waited = wait_until('app', q{SELECT count(*) = 1 FROM order_flow.refused_attempt WHERE order_key = '2'}, 10);
ok(defined $waited, 'the refused attempt reaches order_flow.refused_attempt');
cmp_ok(time - $t0, '<', 3, 'within a few seconds');
@r = split /\|/, $node->safe_psql('app', q{
	SELECT concat_ws('|',
	  (SELECT state FROM order_flow.tracked_order WHERE order_key = '2'),
	  (SELECT concat_ws(',', actor, tbl, order_key, from_state, to_state, sqlstate, reason LIKE '%invalid transition%',
	                    attempted_at <= recorded_at)
	     FROM order_flow.refused_attempt WHERE order_key = '2'),
	  (SELECT max(refused_total) >= 1 FROM order_flow.worker_status()))});
is($r[0], 'quoted', 'the order did not move');
is($r[1], 'mallory,public.orders,2,quoted,paid,23514,t,t',
	'the refused attempt has actor, table, order, edge, SQLSTATE and reason');
is($r[2], 't', 'worker_status() counts refusals');

# ------------------------------------------------------ a second database
$node->safe_psql('postgres', 'CREATE DATABASE app2');
my $app2 = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'app2'});
# make the launcher look at app2 now (a reload wakes it): it finds no
# extension there and marks it absent
$node->reload;
ok(defined wait_until('app', "SELECT coalesce(bool_or(absent), false) FROM order_flow.worker_status() WHERE dboid = $app2", 15),
	'the launcher has looked at app2 and found no extension');
my $created = $node->safe_psql('app2', 'CREATE EXTENSION order_flow; SELECT clock_timestamp()');
$waited = wait_until('app2', 'SELECT ' . schedulers('app2') . ' = 1', 15);
ok(defined $waited, 'CREATE EXTENSION in a second database gets a scheduler');
my $startup = $node->safe_psql('app2', qq{
	SELECT extract(epoch FROM backend_start - '$created'::timestamptz) FROM pg_stat_activity
	 WHERE backend_type = 'order_flow scheduler' AND datname = 'app2'});
cmp_ok($startup, '<', 1, "it starts within a second of CREATE EXTENSION ($startup s)");
$node->safe_psql('app2', q{
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
UPDATE order_flow.transition_rule SET ack_within = '1 second'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
INSERT INTO orders (id) VALUES (7);
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed';
});
ok(defined wait_until('app2', q{SELECT count(*) = 3 FROM order_flow.notification WHERE order_key = '7' AND level = 2}, 10),
	q{the second database's scheduler escalates there});
@r = split /\|/, $node->safe_psql('app2', q{
	SELECT concat_ws('|',
	  (SELECT extract(epoch FROM max(c.created_at - p.deadline))
	     FROM order_flow.notification c JOIN order_flow.notification p ON p.id = c.parent_id WHERE c.order_key = '7'),
	  (SELECT count(*) FROM order_flow.verify_audit()))});
cmp_ok($r[0], '<', 1, "lag in app2 under 1 s ($r[0] s)");
is($r[1], '0', 'the chains of app2 verify');
is($node->safe_psql('app', q{SELECT count(*) FROM order_flow.notification WHERE order_key = '7'}), '0',
	q{app's tables are untouched by app2's orders});

# ------------------------------------------------ order_flow.database
$node->safe_psql('postgres', q{ALTER SYSTEM SET order_flow.database = 'app, ghost_db'});
$node->reload;
ok(defined wait_until('postgres', 'SELECT ' . schedulers('app2') . ' = 0', 15),
	'app2 is no longer named: its scheduler stops');
# wake the launcher a few more times: every pass looks for ghost_db again
for (1 .. 3)
{
	usleep(300_000);
	$node->reload;
}
usleep(500_000);
my @logged = (slurp_file($node->logfile) =~ /database "ghost_db" named in order_flow.database does not exist/g);
is(scalar @logged, 1, 'the missing database is logged once');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server stays up');
is($node->safe_psql('app', 'SELECT ' . schedulers('app')), '1', 'the named database is still served');
unlike(slurp_file($node->logfile), qr/(PANIC|server process .* was terminated)/, 'nothing crashed');

$node->safe_psql('postgres', q{ALTER SYSTEM RESET order_flow.database});
$node->reload;
ok(defined wait_until('postgres', 'SELECT ' . schedulers('app2') . ' = 1', 15),
	'with the setting reset, app2 is served again');

# ------------------------------------------------ DROP DATABASE
my $log_offset = -s $node->logfile;
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app2');
is($rc, 0, 'DROP DATABASE of a served database succeeds (its scheduler steps aside)') or diag($err);
usleep(1_500_000);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'order_flow scheduler'}),
	'1', 'no scheduler is started for the dropped database; app keeps its own');
my $log_after = substr(slurp_file($node->logfile), $log_offset);
unlike($log_after, qr/FATAL:(?!\s+terminating background worker "order_flow scheduler" due to administrator command)/,
	'no scheduler failed to connect to the dropped database (the only FATAL is the asked-for exit)');

$node->stop;
done_testing();
