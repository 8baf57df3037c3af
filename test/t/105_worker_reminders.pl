# 105_worker_reminders.pl -- the scheduler looks for stale-order reminders
# only when it has a reason to: tracked_order's statistics show a change,
# the earliest stale_after it saw has come, or an hour passed.
#
# With order_flow preloaded and order_flow.naptime = 1s:
#   - an order imported with a back-dated history, already past its
#     "cannot wait" threshold, gets its reminder from the scheduler within
#     seconds, with no sweep called by anyone;
#   - once nothing changes, the scheduler stops scanning tracked_order
#     (its sequential-scan count stays put over many naptimes) -- 1.0
#     scanned it once per naptime;
#   - a change made behind the API (a DBA's UPDATE of tracked_order) marks
#     the scheduler too: the reminder it makes due is raised within seconds;
#   - so does an ordinary transition.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $node = fast_worker_node('reminders');

$node->safe_psql('app', q{
CREATE TABLE orders (id text PRIMARY KEY, status text NOT NULL);
INSERT INTO orders SELECT 'o' || g, 'inquiry' FROM generate_series(1, 4) g;
SELECT order_flow.manage('orders');
});

sub reminders
{
	my ($key) = @_;
	return qq{SELECT (SELECT count(*) FROM order_flow.audit_log WHERE order_key = '$key' AND action = 'remind')};
}
my $scans = q{SELECT seq_scan FROM pg_stat_user_tables WHERE relid = 'order_flow.tracked_order'::regclass};

# ------------------------------------------------- a back-dated import
$node->safe_psql('app', q{
SELECT order_flow.import_transition('orders', 'o1', 'quoted', now() - interval '5 days');
});
my $waited = poll_until($node, 'app', reminders('o1') . ' > 0', 15);
ok(defined $waited, 'a back-dated order past its threshold is reminded by the scheduler');

# ------------------------------------------------- quiet: no more scans
# let the scheduler take its quiet look, then watch for many naptimes
sleep 4;
my $before = $node->safe_psql('app', $scans);
sleep 8;
my $after = $node->safe_psql('app', $scans);
is($after, $before, "with nothing changed, the scheduler does not scan tracked_order (seq_scan stays $before over 8 naptimes)");

# ------------------------------------------------- a change behind the API
$node->safe_psql('app', q{
UPDATE order_flow.tracked_order SET entered_at = now() - interval '5 days', stale_after = now() - interval '1 minute'
 WHERE order_key = 'o2';
});
$waited = poll_until($node, 'app', reminders('o2') . ' > 0', 15);
ok(defined $waited, q{a DBA's UPDATE of tracked_order that makes a reminder due is seen within seconds});

# ------------------------------------------------- an ordinary transition
# o3 enters quoted now; shorten quoted's threshold so that its reminder is due in 2 s
$node->safe_psql('app', q{
UPDATE orders SET status = 'quoted' WHERE id = 'o3';
UPDATE order_flow.state SET max_dwell = interval '2 seconds' WHERE workflow = 'b2b_order' AND state = 'quoted';
});
$waited = poll_until($node, 'app', reminders('o3') . ' > 0', 15);
ok(defined $waited, 'a threshold lowered by configuration applies to waiting orders: reminded within seconds');

is($node->safe_psql('app', 'SELECT count(*) FROM order_flow.verify_audit()'), '0', 'the chains verify');

$node->stop;
done_testing();
