# test/t/OrderFlowTest.pm -- helpers shared by the TAP tests (found through
# the -I test/t that the harness gives prove).
package OrderFlowTest;

use strict;
use warnings;

use Exporter 'import';
use PostgreSQL::Test::Cluster;
use Time::HiRes qw(usleep time);
use IPC::Run;

our @EXPORT = qw(poll_until fast_worker_node client_program march_order_sql);

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

# march_order_sql(table, key): SQL that creates table (id int key, a
# promised_ship_date, a text status), manages it with that attribute and
# imports one order shipped at 20:00 UTC on its promised date, 4 March
# 2024: on time in UTC, late in Shanghai (04:00 the next day).  For the
# business time zone's tests.
sub march_order_sql
{
	my ($table, $key) = @_;
	return qq{
CREATE TABLE $table (id int PRIMARY KEY, promised_ship_date date, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO $table VALUES ($key, '2024-03-04');
SELECT order_flow.manage('$table', attributes => '{promised_ship_date}');
SELECT order_flow.import_transition('$table', '$key', s, t, '{"reason": "history"}')
  FROM (VALUES ('quoted', '2024-03-01 08:00+00'::timestamptz), ('contract_signed', '2024-03-01 10:00+00'),
               ('warehouse_confirmed', '2024-03-02 10:00+00'), ('finance_approved', '2024-03-02 12:00+00'),
               ('picking', '2024-03-03 10:00+00'), ('shipped', '2024-03-04 20:00+00')) v(s, t);
};
}

1;
