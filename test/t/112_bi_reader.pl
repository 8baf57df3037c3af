# 112_bi_reader.pl -- the README's "Reporting from a BI tool" section, run
# as written: its statements (between the bi-reader markers) are read from
# README.md and each runs, as a login role granted only order_flow_reader,
# on a database with orders, a signed contract, a payment, an exception and
# open notifications -- no statement may fail and the metrics must show
# that data.  The same role is refused (42501) the extension's tables, its
# writing functions and the configuration.  Every view of the extension is
# readable by order_flow_reader, so a view added later without the grant
# fails here.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $node = PostgreSQL::Test::Cluster->new('bi_reader');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id text PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry',
                     customer text, region text);
SELECT order_flow.manage('orders', customer_column => 'customer', attributes => ARRAY['region']::name[]);
INSERT INTO orders (id, customer, region) VALUES ('bi-1', 'Acme', 'east'), ('bi-2', 'Beta', 'west');
UPDATE orders SET status = 'quoted';
UPDATE orders SET status = 'contract_signed' WHERE id = 'bi-1';
SELECT order_flow.record('bi-1', 'payment', '{"amount": 100, "due_date": "2026-01-31", "paid_date": "2026-01-20"}');
SELECT order_flow.record('bi-2', 'exception', '{"exception_type": "carrier_delay"}');
SELECT order_flow.metrics_fold(true);
CREATE ROLE metabase LOGIN;
GRANT order_flow_reader TO metabase;
});

# ------------------------------------------------ the README's statements
open(my $fh, '<', 'README.md') or die "README.md: $!";
my $readme = do { local $/; <$fh> };
close $fh;
my ($block) = $readme =~ /<!-- bi-reader: begin -->\s*```sql\n(.*?)```\s*<!-- bi-reader: end -->/s;
ok(defined $block, 'README.md has the bi-reader block');
my @statements = grep { /\S/ } map { s/^\s+|\s+$//gr } split /;\s*\n/, ($block // '');
cmp_ok(scalar @statements, '>=', 10, 'the block holds the report statements (' . scalar(@statements) . ')');

for my $sql (@statements)
{
	my ($rc, $out, $err) = $node->psql('postgres', "$sql;", extra_params => ['-U', 'metabase']);
	is($rc . ($err ne '' ? " $err" : ''), '0', "metabase: $sql");
}

# the data shows through the reader's eyes
is($node->safe_psql('postgres', q{SELECT count(*) FROM order_flow.order_timeline WHERE contract_signed_at IS NOT NULL},
	extra_params => ['-U', 'metabase']), '1', 'order_timeline shows the signed contract');
is($node->safe_psql('postgres', q{SELECT exception_type || ' ' || count FROM order_flow.exception_pareto},
	extra_params => ['-U', 'metabase']), 'carrier_delay 1', 'exception_pareto shows the exception');
is($node->safe_psql('postgres', q{SELECT count(*) FROM order_flow.pending_acks},
	extra_params => ['-U', 'metabase']),
	$node->safe_psql('postgres', q{SELECT count(*) FROM order_flow.notification WHERE status = 'pending'}),
	'pending_acks shows the open notifications');

# --------------------------------------------------------- and no further
for my $sql (
	'SELECT count(*) FROM order_flow.audit_log',
	'SELECT count(*) FROM order_flow.order_fact',
	'SELECT count(*) FROM order_flow.outbox',
	'SELECT count(*) FROM orders',
	'SELECT order_flow.metrics_rebuild()',
	'SELECT order_flow.kpi_cache_refresh()',
	q{SELECT order_flow.acknowledge(1)},
	q{UPDATE order_flow.state SET max_dwell = interval '1 hour'})
{
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql;",
		extra_params => ['-U', 'metabase']);
	like($err, qr/42501/, "metabase is refused: $sql");
}

is($node->safe_psql('postgres', q{
	SELECT coalesce(string_agg(c.relname, ', ' ORDER BY c.relname), '')
	  FROM pg_class c
	 WHERE c.relnamespace = 'order_flow'::regnamespace AND c.relkind = 'v'
	   AND NOT has_table_privilege('order_flow_reader', c.oid, 'SELECT')}),
	'', 'order_flow_reader may read every view of the extension');

$node->stop;
done_testing();
