# 104_worker_kpi_cache.pl -- the scheduler keeps the kpi() cache built.
#
# With order_flow preloaded and order_flow.naptime = 1s:
#   - orders signed in earlier months (history imported with
#     import_transition) get their months cached by the scheduler, with no
#     call by anyone, and kpi() answers exactly what the raw aggregate does;
#   - a change to one of those orders marks its month; the scheduler
#     rebuilds it within a few naptimes and kpi() stays exact throughout;
#   - with order_flow.enabled = off the scheduler builds nothing;
#   - a failing refresh (a broken cache table) is logged and does not stop
#     escalation: the scheduler keeps escalating.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $node = fast_worker_node('kpi_cache');

sub wait_until
{
	my ($db, $query, $limit) = @_;
	return poll_until($node, $db, $query, $limit);
}

my $exact = q{SELECT (SELECT k::text FROM order_flow.kpi('-infinity', 'infinity') k)
  = (SELECT (order_flow.kpi_summary(contract_signed_at, first_logistics_at, shipped_at, promised_ship_date,
                                    delivered_at, accepted_at, rework_return, exceptions))::text
       FROM order_flow.order_fact WHERE contract_signed_at IS NOT NULL)};

$node->safe_psql('app', q{
CREATE TABLE orders (id text PRIMARY KEY, status text NOT NULL);
INSERT INTO orders SELECT 'o' || g, 'inquiry' FROM generate_series(1, 6) g;
SELECT order_flow.manage('orders');
-- two orders in each of the three UTC months before the one of now() - 1 hour
-- (the refresh's margin: those three have ended before its horizon); month
-- arithmetic on UTC wall-clock timestamps, whatever the session's time zone
CREATE TEMP TABLE base AS
SELECT date_trunc('month', (now() - interval '1 hour') AT TIME ZONE 'UTC') AS m;
SELECT order_flow.import_transition('orders', 'o' || g, 'quoted',
         (m - ((g + 1) / 2) * interval '1 month' + interval '2 days') AT TIME ZONE 'UTC')
  FROM base, generate_series(1, 6) g;
SELECT order_flow.import_transition('orders', 'o' || g, 'contract_signed',
         (m - ((g + 1) / 2) * interval '1 month' + interval '3 days') AT TIME ZONE 'UTC')
  FROM base, generate_series(1, 6) g;
});

# ----------------------------------------------------------------- built
# (counted by the months that hold orders: should the clock pass the next
# month's first hour meanwhile, the empty month before it is built too)
my $waited = wait_until('app', q{SELECT count(*) = 3 FROM order_flow.kpi_month WHERE orders > 0}, 20);
ok(defined $waited, 'the scheduler builds the three complete months by itself')
  or diag($node->safe_psql('app', 'SELECT month_start, orders FROM order_flow.kpi_month'));
is($node->safe_psql('app', 'SELECT sum(orders) FROM order_flow.kpi_month'), '6',
	'... holding the six orders signed in them');
is($node->safe_psql('app', $exact), 't', 'kpi() from the cache equals the raw aggregate');

# ----------------------------------------------------------------- changed
my $before = $node->safe_psql('app', q{SELECT built_at FROM order_flow.kpi_month
                                        ORDER BY month_start LIMIT 1});
$node->safe_psql('app', q{SELECT order_flow.record('o6', 'exception', '{"exception_type": "damaged_goods"}')});
is($node->safe_psql('app', $exact), 't', 'right after a change to a cached month, kpi() is exact');
$waited = wait_until('app', qq{SELECT built_at > '$before' FROM order_flow.kpi_month
                               ORDER BY month_start LIMIT 1}, 20);
ok(defined $waited, 'the scheduler rebuilds the changed month');
is($node->safe_psql('app', 'SELECT count(*) FROM order_flow.kpi_dirty'), '0', '... and clears its mark');
is($node->safe_psql('app', $exact), 't', 'kpi() from the rebuilt cache is exact');
is($node->safe_psql('app', q{SELECT exception_rate = 1::float8 / 6 FROM order_flow.kpi('-infinity', 'infinity')}),
	't', '... and counts the exception (1 of 6 orders)');

# ----------------------------------------------------------------- a failing refresh
# break the cache table: the refresh fails, is logged, and escalation goes on
$node->safe_psql('app', q{
ALTER TABLE order_flow.kpi_month ADD CONSTRAINT kpi_month_broken CHECK (orders < 0) NOT VALID;
DELETE FROM order_flow.kpi_month;
});
my $log_offset = -s $node->logfile;
$node->safe_psql('app', q{
UPDATE order_flow.transition_rule SET ack_within = '1 second'
 WHERE workflow = 'b2b_order' AND from_state = 'quoted' AND to_state = 'contract_signed';
INSERT INTO orders VALUES ('o7', 'inquiry');
UPDATE orders SET status = 'quoted' WHERE id = 'o7';
UPDATE orders SET status = 'contract_signed' WHERE id = 'o7';
});
$waited = wait_until('app', q{SELECT count(*) > 0 FROM order_flow.notification
                              WHERE order_key = 'o7' AND status = 'escalated'}, 20);
ok(defined $waited, 'with the refresh failing, the scheduler still escalates');
ok(defined wait_until('postgres', 'SELECT true', 1), 'the server is up');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/kpi_month_broken/, 'the failing refresh is logged');
$node->safe_psql('app', q{ALTER TABLE order_flow.kpi_month DROP CONSTRAINT kpi_month_broken});
$waited = wait_until('app', q{SELECT count(*) = 3 FROM order_flow.kpi_month WHERE orders > 0}, 20);
ok(defined $waited, 'once the table is repaired the scheduler builds the cache again');

# ----------------------------------------------------------------- disabled
$node->append_conf('postgresql.conf', 'order_flow.enabled = off');
$node->reload;
sleep 2;
$node->safe_psql('app', 'DELETE FROM order_flow.kpi_month');
sleep 4;
is($node->safe_psql('app', 'SELECT count(*) FROM order_flow.kpi_month'), '0',
	'with order_flow.enabled = off the scheduler builds nothing');
is($node->safe_psql('app', $exact), 't', 'kpi() without the cache is exact');

$node->stop;
done_testing();
