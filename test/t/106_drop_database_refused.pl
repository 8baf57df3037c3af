# 106_drop_database_refused.pl -- a DROP DATABASE that does not go ahead
# leaves the database's scheduler serving it.
#
# The scheduler steps aside for a DROP DATABASE of its database (otherwise
# the DROP would fail with "being accessed by other users").  It used to do
# so before PostgreSQL had checked anything, so any login role could stop
# escalation in any database for minutes with a DROP that was then refused.
#   - DROP DATABASE by a role with no rights: refused, same scheduler;
#   - DROP DATABASE inside a transaction block: refused, same scheduler;
#   - DROP DATABASE by the owner while another session is connected: it
#     fails after the server's wait, and a scheduler serves the database
#     again within seconds;
#   - escalation still happens in the database afterwards.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;
use Time::HiRes qw(usleep);

my $node = fast_worker_node('dropdb');
$node->safe_psql('postgres', 'CREATE ROLE nobody LOGIN');

my $sched = q{SELECT pid FROM pg_stat_activity
               WHERE backend_type = 'order_flow scheduler' AND datname = 'app'};
ok(defined poll_until($node, 'postgres', "SELECT EXISTS ($sched)", 15), 'app has a scheduler');
my $pid = $node->safe_psql('postgres', $sched);

my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app', extra_params => [ '-U', 'nobody' ]);
isnt($rc, 0, 'DROP DATABASE by a role with no rights is refused');
like($err, qr/must be owner/, '... as not the owner');
usleep(1_500_000);
is($node->safe_psql('postgres', $sched), $pid, 'the same scheduler still serves app');

($rc, $out, $err) = $node->psql('postgres', 'BEGIN; DROP DATABASE app; COMMIT;');
like($err, qr/cannot run inside a transaction block/, 'DROP DATABASE inside a transaction block is refused');
usleep(1_500_000);
is($node->safe_psql('postgres', $sched), $pid, 'the same scheduler still serves app');

# another session holds the database: the DROP fails after its wait
my $holder = $node->background_psql('app');
$holder->query_safe('SELECT 1');
($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE app');
isnt($rc, 0, 'DROP DATABASE while another session is connected fails');
like($err, qr/being accessed by other users/, '... because of that session');
ok(defined poll_until($node, 'postgres', "SELECT EXISTS ($sched)", 15),
	'a scheduler serves app again within seconds');
$holder->quit;

# and it escalates
$node->safe_psql('app', q{
CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders VALUES (1);
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed';
UPDATE order_flow.notification SET deadline = now() - interval '1 second' WHERE status = 'pending';
SELECT _order_flow._wake_scheduler(now());
});
ok(defined poll_until($node, 'app',
		q{SELECT count(*) = 3 FROM order_flow.notification WHERE level = 2}, 15),
	'overdue acknowledgements are escalated in app');

$node->stop;
done_testing();
