# 110_many_databases.pl -- more databases with the extension than
# background workers: order_flow needs one scheduler per database plus the
# launcher, from the pool of max_worker_processes (shared with parallel
# query and logical replication).
#
# With max_worker_processes = 4 (the launcher and three schedulers; no
# logical replication launcher, which would take one too) and five
# databases:
#   - CREATE EXTENSION in a database beyond the pool warns, naming
#     max_worker_processes;
#   - worker_status() lists every database the launcher tried: the three
#     served (a pid), the two that got no worker (no_worker_slot);
#   - the server log says so once per database, not at every retry;
#   - pg_monitor may read worker_status();
#   - once a served database drops the extension, its worker goes to one
#     that waited, which is then served.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $node = PostgreSQL::Test::Cluster->new('many_databases');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
order_flow.naptime = 1s
order_flow.database = 'd1, d2, d3, d4, d5'
max_worker_processes = 4
max_parallel_workers = 0
max_logical_replication_workers = 0
});
$node->start;

my $status = q{SELECT string_agg(d.datname || ':' || CASE WHEN w.pid IS NOT NULL THEN 'served'
                                                         WHEN w.no_worker_slot THEN 'no worker'
                                                         ELSE 'waiting' END, ',' ORDER BY d.datname)
                 FROM order_flow.worker_status() w JOIN pg_database d ON d.oid = w.dboid};

for my $i (1 .. 3)
{
	$node->safe_psql('postgres', "CREATE DATABASE d$i");
	$node->safe_psql("d$i", 'CREATE EXTENSION order_flow');
}
ok(defined poll_until($node, 'd1', qq{SELECT ($status) = 'd1:served,d2:served,d3:served'}, 60),
	'three databases are served by three schedulers')
  or diag($node->safe_psql('d1', $status));

for my $i (4, 5)
{
	$node->safe_psql('postgres', "CREATE DATABASE d$i");
	my ($rc, $out, $err) = $node->psql("d$i", 'CREATE EXTENSION order_flow');
	is($rc, 0, "CREATE EXTENSION in d$i succeeds");
	like($err, qr/WARNING:.*may get no scheduler.*max_worker_processes is 4.*HINT:.*Raise max_worker_processes/s,
		"... and warns that d$i may get no scheduler, naming max_worker_processes");
}
ok(defined poll_until($node, 'd1',
		qq{SELECT ($status) = 'd1:served,d2:served,d3:served,d4:no worker,d5:no worker'}, 60),
	'worker_status() lists the two databases that got no worker')
  or diag($node->safe_psql('d1', $status));

# the launcher keeps retrying; the log says it once per database
sleep(3);
my $log = slurp_file($node->logfile);
my @d4 = ($log =~ /could not start a scheduler for database "d4": no free background worker slot/g);
my @d5 = ($log =~ /could not start a scheduler for database "d5": no free background worker slot/g);
is(scalar(@d4) . ' ' . scalar(@d5), '1 1', 'the log says it once per database, not at every retry');

$node->safe_psql('d1', q{CREATE ROLE watcher LOGIN IN ROLE pg_monitor});
my ($rc, $out, $err) = $node->psql('d1', 'SELECT count(*) FROM order_flow.worker_status()',
	extra_params => [ '-U', 'watcher' ]);
is($rc . ':' . $out, '0:5', 'pg_monitor reads worker_status()') or diag($err);

# d1 gives its worker up: one of the waiting databases gets it
$node->safe_psql('d1', 'DROP EXTENSION order_flow');
ok(defined poll_until($node, 'd2', qq{SELECT ($status) ~ 'd4:served|d5:served'}, 60),
	'a freed worker goes to a database that waited')
  or diag($node->safe_psql('d2', $status));

$node->stop;
done_testing();
