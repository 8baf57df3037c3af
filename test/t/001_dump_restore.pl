# 001_dump_restore.pl -- pg_dump -Fc / pg_restore round trip of a database
# using order_flow (SPEC 3.5 and 5: "a dump/restore loses nothing and still
# verifies"; "keep every configuration row, order state and audit event").
#
# The source database has a managed table with orders moved through several
# states (notifications, a hold, a cancellation, recorded facts), and a
# customised catalogue: a shipped row changed, a shipped edge deleted,
# members added, a custom state with its edges.  After restoring into a new
# database:
#   - pg_restore reports no error (the extension's shipped configuration
#     rows must not collide with the dumped ones);
#   - every table the extension dumps (pg_extension_config_dump) holds
#     exactly the source rows, every dumped sequence the source position;
#   - the managed table holds the same orders;
#   - verify_audit() finds nothing;
#   - new transitions and a configuration change continue the restored
#     chains, which still verify.
# A second round trip puts a managed table in a schema that sorts before
# "order_flow" (pg_dump loads table data in name order) with an order in a
# custom state.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'order_flow'");
$node->start;

my $tmp = PostgreSQL::Test::Utils::tempdir;

# run a client program against the node; returns (ok, stdout, stderr)
sub client { return client_program($node, @_); }

# pg_dump -Fc SRC; createdb DST; pg_restore; returns (ok, stderr of pg_restore)
# the staged restore the README documents for managed tables whose status
# column is order_flow.status and that live in a schema sorting before
# order_flow: the extension's data first, then everything else
sub round_trip_staged
{
	my ($src, $dst) = @_;
	my $file = "$tmp/$src.dump";
	my ($ok, $out, $err) = client('pg_dump', '-Fc', '-f', $file, '-d', $src);
	ok($ok, "pg_dump -Fc $src") or diag($err);
	$node->safe_psql('postgres', qq{CREATE DATABASE "$dst"});
	my $all_err = '';
	for my $step (['--section=pre-data'], ['--section=data', '-n', 'order_flow'],
		['--section=data', '-N', 'order_flow'], ['--section=post-data'])
	{
		my ($k, $o, $e) = client('pg_restore', @$step, '-d', $dst, $file);
		$ok &&= $k;
		$all_err .= $e;
	}
	return ($ok, $all_err);
}

sub round_trip
{
	my ($src, $dst) = @_;
	my $file = "$tmp/$src.dump";
	my ($ok, $out, $err) = client('pg_dump', '-Fc', '-f', $file, '-d', $src);
	ok($ok, "pg_dump -Fc $src") or diag($err);
	$node->safe_psql('postgres', qq{CREATE DATABASE "$dst"});
	($ok, $out, $err) = client('pg_restore', '-d', $dst, $file);
	return ($ok, $err);
}

# all rows of the given relations (tables: rows as JSON; sequences: their
# position) in one query: { relation => "sorted lines" }
sub snapshot
{
	my ($db, @rels) = @_;
	my @parts;
	for my $entry (@rels)
	{
		my ($rel, $kind) = @$entry;
		push @parts,
		  $kind eq 'S'
		  ? "SELECT '$rel', last_value || ' ' || is_called FROM $rel"
		  : "SELECT '$rel', to_jsonb(t)::text FROM $rel t";
	}
	my %snap = map { $_->[0] => '' } @rels;
	my $out = $node->safe_psql($db,
		"SELECT r, j FROM (" . join(' UNION ALL ', @parts) . ") x(r, j) ORDER BY r, j",
		extra_params => [ '-F', "\t" ]);
	for my $line (split /\n/, $out)
	{
		my ($rel, $row) = split /\t/, $line, 2;
		$snap{$rel} .= "$row\n";
	}
	return \%snap;
}

# compare one relation of two snapshots; on a difference, show the rows
# found on one side only
sub same_rows
{
	my ($a, $b, $rel, $name, $an, $bn) = @_;
	return pass($name) if $a->{$rel} eq $b->{$rel};
	my %in_a = map { $_ => 1 } split /\n/, $a->{$rel};
	my %in_b = map { $_ => 1 } split /\n/, $b->{$rel};
	fail($name);
	diag("only in $an: $_") for grep { !$in_b{$_} } sort keys %in_a;
	diag("only in $bn: $_") for grep { !$in_a{$_} } sort keys %in_b;
	return 0;
}

# ---------------------------------------------------------------- source
$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
CREATE EXTENSION order_flow;
CREATE TABLE orders (id int PRIMARY KEY, status order_flow.status NOT NULL,
                     customer text, region text);
SELECT order_flow.manage('orders', customer_column => 'customer',
                         attributes => ARRAY['region']::name[]);

-- the customised catalogue, in one transaction (validated at commit)
BEGIN;
UPDATE order_flow.state SET max_dwell = '72 hours'
 WHERE workflow = 'b2b_order' AND state = 'quoted';
INSERT INTO order_flow.member (actor, department, level)
VALUES ('alice', 'sales', 1), ('wang', 'warehouse', 2);
SELECT order_flow.create_status('quality_check', 'packed', 'shipped');
INSERT INTO order_flow.state (workflow, state, category, owner_department, description)
VALUES ('b2b_order', 'quality_check', 'active', 'warehouse', 'QC before shipping');
INSERT INTO order_flow.transition_rule (workflow, from_state, to_state, performed_by)
VALUES ('b2b_order', 'packed', 'quality_check', '{warehouse}'),
       ('b2b_order', 'quality_check', 'shipped', '{warehouse,logistics}');
DELETE FROM order_flow.transition_rule
 WHERE workflow = 'b2b_order' AND from_state = 'finance_approved' AND to_state = 'picking';
COMMIT;

INSERT INTO orders VALUES (1, 'inquiry', 'acme', 'north'), (2, 'inquiry', 'globex', 'south'),
                          (3, 'inquiry', 'initech', 'east'), (4, 'inquiry', 'umbrella', 'west');
UPDATE orders SET status = 'quoted' WHERE id <= 3;
UPDATE orders SET status = 'contract_signed' WHERE id <= 3;
UPDATE orders SET status = 'warehouse_confirmed' WHERE id = 1;
UPDATE orders SET status = 'finance_approved' WHERE id = 1;
UPDATE orders SET status = 'scheduled' WHERE id = 1;
UPDATE orders SET status = 'picking' WHERE id = 1;
UPDATE orders SET status = 'packed' WHERE id = 1;
UPDATE orders SET status = 'quality_check' WHERE id = 1;
SELECT order_flow.transition('orders', '2', 'on_hold', 'credit check');
SELECT order_flow.transition('orders', '3', 'cancelled', 'customer withdrew');
SELECT order_flow.record('1', 'payment', jsonb_build_object('amount', 500));
SELECT order_flow.record('2', 'note', jsonb_build_object('text', 'call back on Monday'));
});

is($node->safe_psql('src', 'SELECT count(*) FROM order_flow.verify_audit()'),
	'0', 'source: audit chains verify');

# ------------------------------------------------------------ round trip
my ($ok, $err) = round_trip('src', 'dst');
ok($ok && $err !~ /error/i, 'pg_restore into a new database reports no error')
  or diag("pg_restore stderr:\n$err");

# every table and sequence the extension dumps, found in the source
my @config = map { [ split / / ] } split /\n/, $node->safe_psql('src', q{
SELECT c.oid::regclass::text || ' ' || c.relkind::text
  FROM pg_extension e, unnest(e.extconfig) AS x(oid) JOIN pg_class c ON c.oid = x.oid
 WHERE e.extname = 'order_flow' ORDER BY 1});
cmp_ok(scalar(@config), '>=', 10, 'the extension marks its tables for pg_dump');
my @rels = (@config, [ 'public.orders', 'r' ]);
my $before = snapshot('src', @rels);
my $after = snapshot('dst', @rels);

for my $entry (@config)
{
	my ($rel, $kind) = @$entry;
	same_rows($before, $after, $rel,
		$kind eq 'S'
		? "sequence $rel restored at its position"
		: "table $rel restored row for row", 'src', 'dst');
}
same_rows($before, $after, 'public.orders', 'managed table restored', 'src', 'dst');

# the individual customisations, named (the table comparison above covers
# them too, these make a failure self-explanatory), and the chains
my @named = split /\|/, $node->safe_psql('dst', q{
SELECT (SELECT max_dwell FROM order_flow.state WHERE workflow = 'b2b_order' AND state = 'quoted'),
       (SELECT count(*) FROM order_flow.transition_rule
         WHERE workflow = 'b2b_order' AND from_state = 'finance_approved' AND to_state = 'picking'),
       (SELECT string_agg(actor || ':' || department, ',' ORDER BY actor) FROM order_flow.member),
       (SELECT count(*) FROM order_flow.transition_rule WHERE 'quality_check' IN (from_state, to_state)),
       (SELECT string_agg(o.id || ':' || o.status || '=' || t.state, ',' ORDER BY o.id)
          FROM orders o JOIN order_flow.tracked_order t ON t.order_key = o.id::text),
       (SELECT count(*) FROM order_flow.verify_audit())});
is($named[0], '72:00:00', 'changed shipped row keeps its value');
is($named[1], '0', 'deleted shipped edge stays deleted');
is($named[2], 'alice:sales,wang:warehouse', 'added members restored');
is($named[3], '2', 'custom state edges restored');
is($named[4], '1:quality_check=quality_check,2:on_hold=on_hold,3:cancelled=cancelled,4:inquiry=inquiry',
	'order states and tracking rows agree after restore');
is($named[5], '0', 'restored audit chains verify');

# ------------------------------------------------- life after the restore
my $head = "SELECT last_seq || ' ' || encode(last_hash, 'hex') FROM order_flow.tracked_order WHERE order_key = ";
my ($seq1, $hash1) = split / /, $node->safe_psql('dst', "$head '1'");

my ($rc, $stdout, $stderr) = $node->psql('dst', q{
UPDATE orders SET status = 'shipped' WHERE id = 1;
SELECT order_flow.transition('orders', '2', 'contract_signed');
UPDATE orders SET status = 'quoted' WHERE id = 4;
});
is($rc, 0, 'transitions work in the restored database (incl. resume from a restored hold)')
  or diag($stderr);
is($node->safe_psql('dst', q{SELECT seq || ' ' || from_state || ' ' || to_state || ' '
                                     || encode(prev_hash, 'hex')
                              FROM order_flow.audit_log WHERE order_key = '1'
                             ORDER BY seq DESC LIMIT 1}),
	($seq1 + 1) . " quality_check shipped $hash1",
	'the new event continues the restored chain');

my ($cfgseq) = split / /, $node->safe_psql('dst', "$head 'order_flow:config'");
($rc, $stdout, $stderr) = $node->psql('dst', q{
UPDATE order_flow.state SET max_dwell = '96 hours' WHERE workflow = 'b2b_order' AND state = 'quoted';
});
is($rc, 0, 'a configuration change works in the restored database') or diag($stderr);
is($node->safe_psql('dst', q{SELECT last_seq FROM order_flow.tracked_order
                              WHERE order_key = 'order_flow:config'}),
	$cfgseq + 1, 'the configuration change is audited in the restored config chain');

is($node->safe_psql('dst', 'SELECT count(*) FROM order_flow.verify_audit()'),
	'0', 'chains still verify after new events');
is($node->safe_psql('dst', q{SELECT string_agg(o.id || ':' || o.status, ',' ORDER BY o.id) FROM orders o}),
	'1:shipped,2:contract_signed,3:cancelled,4:quoted', 'orders moved in the restored database');

# ------------- the restore path must not open a way around validation/audit
# COPY is how pg_restore reloads the catalogue; an administrator's own COPY
# into a catalogue table is an edit like any other: validated at commit
# (a terminal state gets no outgoing edge) and audited.
($cfgseq) = split / /, $node->safe_psql('dst', "$head 'order_flow:config'");
($rc, $stdout, $stderr) = $node->psql('dst', qq{
\\set VERBOSITY verbose
COPY order_flow.transition_rule (workflow, from_state, to_state) FROM stdin;
b2b_order\tarchived\tquoted
\\.
});
like($stderr, qr/23514/, 'COPY of an edge out of a terminal state is refused (23514)')
  or diag("psql exit $rc, stderr: $stderr");
is($node->safe_psql('dst', q{SELECT count(*) FROM order_flow.transition_rule WHERE from_state = 'archived'}),
	'0', '... and the edge is not there');
($rc, $stdout, $stderr) = $node->psql('dst', qq{
COPY order_flow.member (actor, department, level) FROM stdin;
mallory\tfinance\t3
\\.
});
is($node->safe_psql('dst', q{SELECT last_seq FROM order_flow.tracked_order
                              WHERE order_key = 'order_flow:config'}),
	$cfgseq + 1, 'a member added by COPY is audited like an INSERT')
  or diag("psql exit $rc, stderr: $stderr");

# ------------------------------ a managed table in a schema before order_flow
$node->safe_psql('postgres', 'CREATE DATABASE src2');
$node->safe_psql('src2', q{
CREATE EXTENSION order_flow;
SELECT order_flow.create_status('quality_check', 'packed', 'shipped');
BEGIN;
INSERT INTO order_flow.state (workflow, state, category, owner_department)
VALUES ('b2b_order', 'quality_check', 'active', 'warehouse');
INSERT INTO order_flow.transition_rule (workflow, from_state, to_state)
VALUES ('b2b_order', 'packed', 'quality_check'), ('b2b_order', 'quality_check', 'shipped');
COMMIT;
CREATE SCHEMA app;
CREATE TABLE app.rush (id text PRIMARY KEY, status order_flow.status NOT NULL);
SELECT order_flow.manage('app.rush');
-- a superuser may create an order in a later state
INSERT INTO app.rush VALUES ('R-1', 'quality_check'), ('R-2', 'inquiry');
});
($ok, $err) = round_trip_staged('src2', 'dst2');
ok($ok && $err !~ /error/i,
	'staged pg_restore of a managed table in schema "app" holding a custom state reports no error')
  or diag("pg_restore stderr:\n$err");
same_rows(snapshot('src2', [ 'app.rush', 'r' ]), snapshot('dst2', [ 'app.rush', 'r' ]),
	'app.rush', 'orders in a custom state restored (schema "app")', 'src2', 'dst2');
is($node->safe_psql('dst2', 'SELECT count(*) FROM order_flow.verify_audit()'),
	'0', 'restored audit chains verify (schema "app")');

$node->stop;
done_testing();
