# 003_crash.pl -- crashes while orders are being moved.
#
# Orders #1..#20 are moved back and forth (contract_signed <-> need_info,
# which opens notifications, plus a recorded note per move) by a pgbench
# load; the client logs, in the same transaction, the sequence number each
# transaction produced.  Orders #21..#25 are moved by a session whose
# transaction stays open.  Orders #26..#30 were moved and committed before.
#
# Crash 1: kill -9 of the backend with the open transaction, under load
#          (the postmaster resets every backend and recovers).
# Crash 2: immediate shutdown under load, then start.
#
# After each recovery:
#   - verify_audit() finds nothing;
#   - every order's table row, tracking row and last event agree, and its
#     events are numbered 1..n;
#   - what committed is there: the events of #26..#30 are unchanged, every
#     transaction the load client logged has its events, and no event
#     exists that the client did not log (atomic with the transaction);
#   - what did not commit is not: #21..#25 are where they were, without
#     events;
#   - every notifying transition has exactly its notifications;
#   - transitions work again.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
restart_after_crash = on
});
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', q{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders (id) SELECT g FROM generate_series(1, 30) g;
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed';
-- #26..#30: committed history before any crash
UPDATE orders SET status = 'warehouse_confirmed' WHERE id > 25;
UPDATE orders SET status = 'finance_approved' WHERE id > 25;
UPDATE orders SET status = 'picking' WHERE id > 25;
SELECT order_flow.transition('orders', '26', 'shipped');
SELECT order_flow.record('27', 'payment', jsonb_build_object('amount', 100));
-- what the load client logs, in its own transactions
CREATE TABLE client_log (id int NOT NULL, seq bigint NOT NULL, PRIMARY KEY (id, seq));
});

my $committed_q = q{SELECT md5(string_agg(to_jsonb(a)::text, ',' ORDER BY a.id))
                      FROM order_flow.audit_log a WHERE order_key IN ('26', '27', '28', '29', '30')};
my $committed = $node->safe_psql('app', $committed_q);
my $pending_q = q{SELECT string_agg(order_key || ':' || state || ':' || last_seq, ',' ORDER BY order_key)
                    FROM order_flow.tracked_order WHERE order_key IN ('21', '22', '23', '24', '25')};
my $pending = $node->safe_psql('app', $pending_q);
is($pending, '21:contract_signed:3,22:contract_signed:3,23:contract_signed:3,'
	  . '24:contract_signed:3,25:contract_signed:3', 'orders #21..#25 ready');

# the load: one order per transaction, a transition and a recorded note
my $script = "$tmp/load.sql";
open my $fh, '>', $script or die "$script: $!";
print $fh q{\set id random(1, 20)
BEGIN;
SET LOCAL order_flow.reason = 'crash test';
UPDATE orders SET status = CASE status WHEN 'contract_signed' THEN 'need_info'::order_flow.status
                                       ELSE 'contract_signed'::order_flow.status END WHERE id = :id;
SELECT order_flow.record(:id::text, 'note', jsonb_build_object('load', true));
INSERT INTO client_log (id, seq) SELECT :id, last_seq FROM order_flow.tracked_order WHERE order_key = :id::text;
END;
};
close $fh;

sub start_load
{
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', '3', '-j', '3', '-T', '60', '-f', $script,
			'-h', $node->host, '-p', $node->port, 'app'
		],
		'>', \$out, '2>', \$err);
	return $h;
}

# wait until the load has committed at least $n more transactions
sub wait_for_load
{
	my ($n) = @_;
	my $base = $node->safe_psql('app', 'SELECT count(*) FROM client_log');
	for (1 .. 200)
	{
		return 1 if $node->safe_psql('app', 'SELECT count(*) FROM client_log') >= $base + $n;
		usleep(50_000);
	}
	return 0;
}

sub stop_load
{
	my ($h) = @_;
	eval { $h->kill_kill(grace => 1); };
	eval { $h->finish; };
}

# a session that moves #21..#25 and records a payment, and never commits
sub open_transaction
{
	my $bg = $node->background_psql('app', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe(q{BEGIN});
	$bg->query_safe(q{UPDATE orders SET status = 'warehouse_confirmed' WHERE id BETWEEN 21 AND 25});
	$bg->query_safe(q{SELECT order_flow.record('21', 'payment', jsonb_build_object('amount', 1))});
	return ($bg, $pid);
}

sub wait_for_server
{
	for (1 .. 300)
	{
		my ($rc) = $node->psql('app', 'SELECT 1');
		return 1 if $rc == 0;
		usleep(100_000);
	}
	return 0;
}

sub check_after_recovery
{
	my ($when) = @_;

	# all checks in one query (psql round trips are slow on a busy machine)
	my @names = (
		'verify_audit() finds nothing',
		'table rows, tracking rows and last events agree; events numbered 1..n',
		'events committed before the crash are unchanged (#26..#30)',
		'the uncommitted moves of #21..#25 left no trace',
		'the uncommitted payment record left no trace',
		'every committed load transaction has its events',
		'no event without its committed transaction',
		'each notifying transition has exactly its 3 notifications',
		'each notification has its outbox message');
	my @expected = ('0', '0', $committed, $pending, '0', '0', '0', '0', '0');
	my @got = split /\|/, $node->safe_psql('app', qq{
SELECT (SELECT count(*) FROM order_flow.verify_audit()),
  (SELECT count(*) FROM orders o JOIN order_flow.tracked_order t ON t.order_key = o.id::text
    WHERE t.state IS DISTINCT FROM o.status::text
       OR t.last_seq IS DISTINCT FROM (SELECT max(seq) FROM order_flow.audit_log a WHERE a.order_key = t.order_key)
       OR t.last_seq IS DISTINCT FROM (SELECT count(*) FROM order_flow.audit_log a WHERE a.order_key = t.order_key)
       OR t.state IS DISTINCT FROM (SELECT a.to_state FROM order_flow.audit_log a
                                     WHERE a.order_key = t.order_key ORDER BY a.seq DESC LIMIT 1)),
  ($committed_q),
  ($pending_q),
  (SELECT count(*) FROM order_flow.audit_log WHERE order_key = '21' AND action = 'payment'),
  -- the load: every logged transaction has its two events, and every event
  -- after the setup (seq > 3) of #1..#20 belongs to a logged transaction
  (SELECT count(*) FROM client_log c
    WHERE NOT EXISTS (SELECT 1 FROM order_flow.audit_log a
                       WHERE a.order_key = c.id::text AND a.seq = c.seq AND a.action = 'note')
       OR NOT EXISTS (SELECT 1 FROM order_flow.audit_log a
                       WHERE a.order_key = c.id::text AND a.seq = c.seq - 1 AND a.action = 'transition')),
  (SELECT count(*) FROM order_flow.audit_log a
    WHERE a.order_key IN (SELECT g::text FROM generate_series(1, 20) g) AND a.seq > 3
      AND NOT EXISTS (SELECT 1 FROM client_log c WHERE c.id::text = a.order_key
                                                   AND a.seq IN (c.seq, c.seq - 1))),
  (SELECT count(*) FROM order_flow.audit_log a
    WHERE a.action = 'transition' AND a.from_state = 'need_info' AND a.to_state = 'contract_signed'
      AND (SELECT count(*) FROM order_flow.notification n
            WHERE n.order_key = a.order_key AND n.event_seq = a.seq) <> 3),
  (SELECT count(*) FROM order_flow.notification n
    WHERE NOT EXISTS (SELECT 1 FROM order_flow.outbox o WHERE o.notification_id = n.id))
});
	for my $i (0 .. $#names)
	{
		is($got[$i], $expected[$i], "$when: $names[$i]");
	}

	# a new move (logged like the load's, so the next round's checks hold)
	my ($rc, $out, $err) = $node->psql('app', q{
BEGIN;
SET LOCAL order_flow.reason = 'after recovery';
UPDATE orders SET status = CASE status WHEN 'contract_signed' THEN 'need_info'::order_flow.status
                                       ELSE 'contract_signed'::order_flow.status END WHERE id = 1;
SELECT FROM order_flow.record('1', 'note', jsonb_build_object('load', true));
INSERT INTO client_log (id, seq) SELECT 1, last_seq FROM order_flow.tracked_order WHERE order_key = '1';
COMMIT;
SELECT count(*) FROM order_flow.verify_audit();
});
	is($rc, 0, "$when: transitions work again") or diag($err);
	is((split /\n/, $out)[-1], '0', "$when: chains still verify after a new transition");
}

# ------------------------------------------- crash 1: kill -9 of a backend
my $load = start_load();
ok(wait_for_load(20), 'load is committing transitions');
my ($bg, $pid) = open_transaction();
ok(wait_for_load(10), 'load goes on beside the open transaction');

ok(kill('KILL', $pid), "kill -9 of backend $pid (open transaction)");
stop_load($load);
eval { $bg->quit; };
ok(wait_for_server(), 'server is back after the backend crash');
ok($node->log_contains(qr/terminated by signal 9/), 'the postmaster saw the crash and reset');
check_after_recovery('after kill -9');

# ------------------------------------- crash 2: immediate shutdown, start
$load = start_load();
ok(wait_for_load(20), 'load is committing transitions again');
($bg, $pid) = open_transaction();
ok(wait_for_load(10), 'load goes on beside the open transaction');
$node->stop('immediate');
stop_load($load);
eval { $bg->quit; };
$node->start;
ok(wait_for_server(), 'server is back after the immediate shutdown');
check_after_recovery('after immediate shutdown');

$node->stop;
done_testing();
