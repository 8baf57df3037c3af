# test/t/OrderFlowTest.pm -- helpers shared by the TAP tests (found through
# the -I test/t that the harness gives prove).
package OrderFlowTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Time::HiRes qw(usleep time);
use IPC::Run;

our @EXPORT = qw(poll_until fast_worker_node client_program);

# fast_worker_node(name): a started cluster with order_flow preloaded and
# a scheduler naptime of one second, and a database "app" with the
# extension.
sub fast_worker_node
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'order_flow'
order_flow.naptime = 1s
});
	$node->start;
	$node->safe_psql('postgres', 'CREATE DATABASE app');
	$node->safe_psql('app', 'CREATE EXTENSION order_flow');
	return $node;
}

# poll_until(node, db, query, seconds, [interval_ms]): run query in db every
# interval_ms (100) until it returns 't'; the seconds waited, or undef when
# seconds passed first.  (0 is a defined answer: test with defined.)
sub poll_until
{
	my ($node, $db, $query, $limit, $interval_ms) = @_;
	$interval_ms //= 100;
	my $t0 = time;
	while (time - $t0 < $limit)
	{
		my ($rc, $out) = $node->psql($db, $query);
		return time - $t0 if $rc == 0 && $out eq 't';
		usleep($interval_ms * 1000);
	}
	return undef;
}

# client_program(node, program, args...): run a client program (pg_dump,
# pg_restore, ...) against node; returns (ok, stdout, stderr).
sub client_program
{
	my ($node, $program, @args) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $program, '-h', $node->host, '-p', $node->port, @args ],
		'>', \$out, '2>', \$err);
	return ($ok, $out, $err);
}

1;
