# 107_worker_fold.pl -- the scheduler folds the metrics rollup (1.2).
#
#   - with a scheduler serving the database (order_flow.metrics_fold =
#     auto), a transition leaves the rollup to the scheduler, which folds
#     it within seconds of the commit (the latency is printed; the bound
#     here is only liveness, speed is measured by make bench);
#   - metrics_lag() falls back to zero, the rollup equals
#     metrics_rebuild()'s;
#   - a database restored with pg_dump/pg_restore (whose log is reloaded
#     without folding) gets its rollup back from the scheduler's catch-up,
#     including orders that only have record() events.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;
use Time::HiRes qw(time);

my $node = fast_worker_node('fold');
ok(defined poll_until($node, 'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'order_flow scheduler'}, 15),
	'app has a scheduler');

my $rollup = q{SELECT md5(string_agg(f::text, '|' ORDER BY f.order_key)) FROM order_flow.order_fact f};
# exact(db): the rollup as folded equals what metrics_rebuild() computes
sub exact
{
	my ($db) = @_;
	my $folded = $node->safe_psql($db, $rollup);
	$node->safe_psql($db, 'SELECT order_flow.metrics_rebuild()');
	return $node->safe_psql($db, $rollup) eq $folded ? 't' : 'f';
}

$node->safe_psql('app', q{
CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry', region text);
SELECT order_flow.manage('orders', attributes => '{region}');
INSERT INTO orders SELECT g, 'inquiry', 'east' FROM generate_series(1, 20) g;
UPDATE orders SET status = 'quoted';
});
ok(defined poll_until($node, 'app', q{SELECT order_flow.metrics_lag() = interval '0'}, 15),
	'the scheduler folds the first events');

my $t0 = time;
is($node->safe_psql('app', q{BEGIN;
UPDATE orders SET status = 'contract_signed' WHERE id <= 10;
SELECT count(contract_signed_at) FROM order_flow.order_fact;
COMMIT;}), '0', 'the transition left the rollup to the scheduler');
my $waited = poll_until($node, 'app', q{SELECT count(contract_signed_at) = 10 FROM order_flow.order_fact}, 15, 20);
ok(defined $waited, 'the scheduler folds the transitions after their commit');
diag(sprintf('commit to folded: %.2f s (polled every 20 ms)', time - $t0)) if defined $waited;
ok(defined poll_until($node, 'app', q{SELECT order_flow.metrics_lag() = interval '0'}, 15),
	'metrics_lag() falls back to zero');
is(exact('app'), 't', 'the rollup equals metrics_rebuild()');

# an order with only record() events, then a dump and a restore
$node->safe_psql('app', q{
INSERT INTO orders VALUES (99, 'inquiry', 'west');
SELECT order_flow.record('7', 'complaint', '{"text": "late"}');
SELECT order_flow.record('8', 'payment', '{"amount": 20, "due_date": "2026-01-01", "paid_date": "2026-01-02"}');
});
ok(defined poll_until($node, 'app', q{SELECT order_flow.metrics_lag() = interval '0'}, 15), 'folded again');
my $source = $node->safe_psql('app', $rollup);

my $dump = $node->basedir . '/app.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('app'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('restored'), $dump ], 'pg_restore');
ok(defined poll_until($node, 'restored',
		qq{SELECT ($rollup) IS NOT DISTINCT FROM '$source'}, 30),
	"the restored database's scheduler folds the whole log back into the rollup");
is(exact('restored'), 't', 'the restored rollup equals metrics_rebuild()');
is($node->safe_psql('restored', q{SELECT count(*) FROM order_flow.verify_audit()}), '0',
	'and the restored chains verify');

$node->stop;
done_testing();
