# 113_prometheus_exporter.pl -- monitoring without a superuser: a login
# role that is only a member of pg_monitor reads order_flow.monitor, and
# Debian's Prometheus PostgreSQL exporter, started on loopback against this
# cluster with src/monitoring/order_flow.prometheus.yaml and that role,
# exports it: one scrape finds every order_flow_* metric with this
# database's values (the scheduler alive, an overdue acknowledgement, the
# outbox backlog, the fold lag...).
#
# The exporter binary comes from OF_EXPORTER (test/scripts/deps.sh unpacks
# Debian's package under .build/exporter); without it the test skips,
# saying so.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IPC::Run;
use OrderFlowTest;

my $exporter = $ENV{OF_EXPORTER} // '';
plan skip_all => "the Prometheus PostgreSQL exporter is not available (OF_EXPORTER='$exporter'; test/scripts/deps.sh unpacks it)"
  unless $exporter ne '' && -x $exporter;

my $node = fast_worker_node('prom');

$node->safe_psql('app', q{
CREATE TABLE orders (id text PRIMARY KEY, status text NOT NULL DEFAULT 'inquiry');
SELECT order_flow.manage('orders');
INSERT INTO orders (id) VALUES ('pm-1'), ('pm-2');
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id = 'pm-1';
-- one acknowledgement long overdue, left at its last level so the scheduler keeps it overdue
UPDATE order_flow.notification SET deadline = now() - interval '1 hour', escalates = false
 WHERE order_key = 'pm-1' AND department = 'warehouse';
CREATE ROLE mon LOGIN IN ROLE pg_monitor;
});

# the scheduler is up and has swept
ok(defined poll_until($node, 'app', q{SELECT scheduler_alive AND last_sweep IS NOT NULL FROM order_flow.monitor}, 30),
	'order_flow.monitor: the scheduler is alive and has swept');

# ------------------------------------------------- pg_monitor, no superuser
my $row = $node->safe_psql('app',
	q{SELECT scheduler_alive, overdue_acks, outbox_backlog, oldest_overdue_seconds > 3000, refused_dropped
	    FROM order_flow.monitor},
	extra_params => ['-U', 'mon']);
my $backlog = $node->safe_psql('app', q{SELECT count(*) FROM order_flow.outbox WHERE delivered_at IS NULL});
is($row, "t|1|$backlog|t|0", 'a pg_monitor member reads the health row: alive, 1 overdue, the backlog');
my ($rc, $out, $err) = $node->psql('app', 'SELECT count(*) FROM order_flow.outbox',
	extra_params => ['-U', 'mon']);
like($err, qr/permission denied/, '... but not the outbox itself');

# ------------------------------------------------------------ the exporter
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $dsn = sprintf('host=%s port=%d user=mon dbname=app sslmode=disable', $node->host, $node->port);
my ($stdout, $stderr) = ('', '');
my $h = IPC::Run::start(
	[ $exporter, "--web.listen-address=127.0.0.1:$port", '--disable-default-metrics',
	  '--disable-settings-metrics', '--extend.query-path=src/monitoring/order_flow.prometheus.yaml' ],
	'>', \$stdout, '2>', \$stderr,
	init => sub { $ENV{DATA_SOURCE_NAME} = $dsn; });

my $body = '';
for (1 .. 100)
{
	my $res = HTTP::Tiny->new(timeout => 5)->get("http://127.0.0.1:$port/metrics");
	if ($res->{success} && $res->{content} =~ /^order_flow_scheduler_alive/m)
	{
		$body = $res->{content};
		last;
	}
	select(undef, undef, undef, 0.2);
}
$h->kill_kill;
ok($body ne '', 'one scrape of the exporter on loopback answers with order_flow metrics')
  or diag("exporter stderr:\n$stderr");

my %want = (
	scheduler_alive => '1',
	overdue_acks => '1',
	outbox_backlog => $backlog,
	no_worker_slot => '0',
	refused_dropped => '0',
	kpi_cache_dirty_months => undef,
	kpi_cache_months => undef,
	metrics_fold_lag_seconds => undef,
	outbox_oldest_seconds => undef,
	oldest_overdue_seconds => undef,
	seconds_since_sweep => undef,
	refused_total => undef);
for my $m (sort keys %want)
{
	my ($v) = $body =~ /^order_flow_\Q$m\E\{[^}]*datname="app"[^}]*\}\s+(\S+)$/m;
	if (defined $want{$m})
	{
		is($v, $want{$m}, "order_flow_$m is exported with this database's value");
	}
	else
	{
		ok(defined $v && $v =~ /^-?[0-9.e+]+$/, "order_flow_$m is exported (" . ($v // 'missing') . ')');
	}
}

$node->stop;
done_testing();
