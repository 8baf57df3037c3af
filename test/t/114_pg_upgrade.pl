# 114_pg_upgrade.pl -- pg_upgrade of a cluster with order_flow: a managed
# table whose status column has a default, an index on it, a view with a
# status constant and a state added after installation.  pg_upgrade
# restores the schema before it moves the tables' files, so the status
# dictionary is still empty when the default and the view are created;
# before 1.2 the upgrade failed there ("invalid input value for
# order_flow.status").  Afterwards: the same positions, the comparison
# operators (in pg_catalog) and the index work off the search_path, the
# chains verify and orders move on.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Cwd ();

my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
$old->append_conf('postgresql.conf', "shared_preload_libraries = 'order_flow'\n");
$old->start;
$old->safe_psql('postgres', q{
CREATE EXTENSION order_flow;
SELECT order_flow.create_status('credit_review', 'contract_signed', 'warehouse_confirmed');
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL DEFAULT 'inquiry');
CREATE INDEX orders_status_idx ON orders (status);
CREATE VIEW signed_orders AS SELECT id FROM orders WHERE status >= 'contract_signed'::order_flow.status;
SELECT order_flow.manage('orders');
INSERT INTO orders (id) SELECT g FROM generate_series(1, 20) g;
UPDATE orders SET status = 'quoted' WHERE id <= 10;
UPDATE orders SET status = 'contract_signed' WHERE id <= 4;
});
my $before = $old->safe_psql('postgres', q{
SELECT string_agg(label || '@' || sort_position, ',' ORDER BY sort_position) FROM order_flow.status_label});
$old->stop;

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', "shared_preload_libraries = 'order_flow'\n");

my $bindir = $old->config_data('--bindir');
# pg_upgrade writes its files into the current directory: run it from a
# scratch one (the clusters' directories may be relative to this one)
my $here = Cwd::getcwd();
my ($old_data, $new_data) = (Cwd::abs_path($old->data_dir), Cwd::abs_path($new->data_dir));
my $work = PostgreSQL::Test::Utils::tempdir;
chdir $work or die "chdir $work: $!";
command_ok([ "$bindir/pg_upgrade", '--no-sync', '-d', $old_data, '-D', $new_data,
	'-b', $bindir, '-B', $bindir, '-s', $new->host, '-p', $old->port, '-P', $new->port ],
	'pg_upgrade of a cluster with order_flow succeeds');
chdir $here or die "chdir $here: $!";

$new->start;
is($new->safe_psql('postgres', q{
SELECT string_agg(label || '@' || sort_position, ',' ORDER BY sort_position) FROM order_flow.status_label}),
	$before, 'the status dictionary is the old one, every name at its position');
is($new->safe_psql('postgres', q{SET search_path = public; SELECT count(*) FROM orders WHERE status >= 'quoted'}),
	'10', 'off the search_path the comparison follows the process');
is($new->safe_psql('postgres', q{SELECT string_agg(id::text, ',' ORDER BY id) FROM signed_orders}),
	'1,2,3,4', q{the view's status constant kept its meaning});
is($new->safe_psql('postgres', q{INSERT INTO orders (id) VALUES (21) RETURNING status}),
	'inquiry', 'the column default kept its meaning');
like($new->safe_psql('postgres', q{SET search_path = public; SET enable_seqscan = off;
	EXPLAIN (COSTS OFF) SELECT id FROM orders WHERE status = 'quoted'}),
	qr/orders_status_idx/, 'an equality filter uses the index on the status column');
is($new->safe_psql('postgres', q{SELECT count(*) FROM order_flow.verify_audit()}), '0', 'the chains verify');
is($new->safe_psql('postgres', q{
UPDATE orders SET status = 'contract_signed' WHERE id = 5;
SELECT status FROM orders WHERE id = 5}),
	'contract_signed', 'an order moves on');
is($new->safe_psql('postgres', q{SELECT 'credit_review'::order_flow.status < 'warehouse_confirmed'}),
	't', 'the state name added after installation is still between its neighbours');
$new->stop;

done_testing();
