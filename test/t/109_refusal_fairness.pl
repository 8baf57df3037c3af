# 109_refusal_fairness.pl -- the queue of refused attempts is shared by
# every database of the cluster; a database whose scheduler does not run
# (here: not named in order_flow.database) can fill it, but never pushes
# out another database's attempts.
#
#   - 1,100 refusals in the unserved database fill the queue (1,024
#     slots): the rest are counted as dropped;
#   - 50 refusals in the served database afterwards all reach its
#     order_flow.refused_attempt table (before 1.2 every one was dropped);
#   - the flood's own attempts are what gave way.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $node = PostgreSQL::Test::Cluster->new('refusal_fairness');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
order_flow.naptime = 1s
order_flow.database = 'served'
});
$node->start;

for my $db (qw(served flooding))
{
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders (id) VALUES (1);
});
}

# n refused moves (inquiry -> archived is no edge), each caught
my $refuse = sub {
	my ($n) = @_;
	return qq{DO \$\$
BEGIN
    FOR i IN 1 .. $n LOOP
        BEGIN
            UPDATE orders SET status = 'archived' WHERE id = 1;
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
\$\$};
};

my $dropped = q{SELECT max(refused_dropped) FROM order_flow.worker_status()};
$node->safe_psql('flooding', $refuse->(1100));
my $after_flood = $node->safe_psql('served', $dropped);
cmp_ok($after_flood, '>=', 76,
	'1,100 refusals from a database without a scheduler fill the queue; the rest are counted as dropped');

$node->safe_psql('served', $refuse->(50));
ok(defined poll_until($node, 'served', q{SELECT count(*) = 50 FROM order_flow.refused_attempt}, 60),
	"every one of the served database's 50 refusals is recorded")
  or diag('recorded: ' . $node->safe_psql('served', 'SELECT count(*) FROM order_flow.refused_attempt'));
is($node->safe_psql('served', q{SELECT count(*) FROM order_flow.refused_attempt
                                 WHERE from_state = 'inquiry' AND to_state = 'archived'}),
	'50', '... as the moves that were refused');
cmp_ok($node->safe_psql('served', $dropped), '>', $after_flood,
	'the flooding database gave way: its oldest attempts were dropped for them');

$node->stop;
done_testing();
