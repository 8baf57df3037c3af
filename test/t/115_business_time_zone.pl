# 115_business_time_zone.pl -- order_flow.business_time_zone at the server
# level: what no single session can show.
#
#   - its default is the server's timezone (postgresql.conf), not the zone
#     a client asks for when it connects (PGTZ);
#   - a superuser sets it per database (ALTER DATABASE ... SET); a database
#     owner who is not superuser cannot; a value set per role is refused
#     when a session applies it (a warning, and the database's zone stays);
#   - the scheduler, running when the database's zone is changed, restarts
#     to apply it (saying so in the log) and builds the kpi() cache in the
#     new zone; a session connecting in another zone is served that cache.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use OrderFlowTest;

my $node = PostgreSQL::Test::Cluster->new('business_tz');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'order_flow'
order_flow.naptime = 1s
timezone = 'America/Sao_Paulo'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE app');
$node->safe_psql('app', 'CREATE EXTENSION order_flow');

# a client connecting with its own zone
sub in_zone
{
	my ($zone, $db, $sql, $role) = @_;
	local $ENV{PGTZ} = $zone;
	local $ENV{PGUSER} = $role if defined $role;
	return $node->psql($db, $sql);
}

my ($rc, $out, $err) = in_zone('Asia/Tokyo', 'app',
	q{SELECT current_setting('TimeZone') || ' ' || order_flow.business_time_zone()});
is($out, 'Asia/Tokyo America/Sao_Paulo',
	'the default is the server\'s timezone, whatever zone the client connects in');

# ------------------------------------------------------------ who may set it
$node->safe_psql('postgres', q{
CREATE ROLE shop_owner LOGIN;
ALTER DATABASE app OWNER TO shop_owner;
});
($rc, $out, $err) = in_zone('UTC', 'app',
	q{ALTER DATABASE app SET order_flow.business_time_zone = 'UTC'}, 'shop_owner');
isnt($rc, 0, 'the database owner who is not superuser cannot set it');
like($err, qr/permission denied to set parameter "order_flow.business_time_zone"/, '... told why');
($rc, $out, $err) = in_zone('UTC', 'app', q{SET order_flow.business_time_zone = 'UTC'}, 'shop_owner');
isnt($rc, 0, '... nor change it in a session');

$node->safe_psql('postgres', q{ALTER DATABASE app SET order_flow.business_time_zone = 'Asia/Shanghai'});
($rc, $out, $err) = in_zone('Europe/Berlin', 'app', q{SELECT order_flow.business_time_zone()}, 'shop_owner');
is($out, 'Asia/Shanghai', 'a superuser sets it per database; every session of it reads that zone');

$node->safe_psql('postgres', q{ALTER ROLE shop_owner SET order_flow.business_time_zone = 'UTC'});
($rc, $out, $err) = in_zone('UTC', 'app', q{SELECT order_flow.business_time_zone()}, 'shop_owner');
is($out, 'Asia/Shanghai', 'a value set per role is not applied');
like($err, qr/cannot be set per role/, '... and the session is warned');
$node->safe_psql('postgres', q{ALTER ROLE shop_owner RESET order_flow.business_time_zone});

# ------------------------------------------------------------ the scheduler's cache
# an order signed in March 2024 and shipped at 20:00 UTC on its promised
# date: late in Shanghai (04:00 the next day), on time in UTC
$node->safe_psql('app', q{
CREATE TABLE orders (id int PRIMARY KEY, promised_ship_date date, status text NOT NULL DEFAULT 'inquiry');
INSERT INTO orders VALUES (1, '2024-03-04');
SELECT order_flow.manage('orders', attributes => '{promised_ship_date}');
SELECT order_flow.import_transition('orders', '1', s, t, '{"reason": "history"}')
  FROM (VALUES ('quoted', '2024-03-01 08:00+00'::timestamptz), ('contract_signed', '2024-03-01 10:00+00'),
               ('warehouse_confirmed', '2024-03-02 10:00+00'), ('finance_approved', '2024-03-02 12:00+00'),
               ('picking', '2024-03-03 10:00+00'), ('shipped', '2024-03-04 20:00+00')) v(s, t);
});
ok(defined poll_until($node, 'app',
		q{SELECT EXISTS (SELECT 1 FROM order_flow.kpi_month WHERE month_start = '2024-03-01 00:00+00')}, 60),
	'the scheduler builds the cache');
like(slurp_file($node->logfile), qr/business_time_zone of this database was changed; the scheduler restarts/,
	'the scheduler that was running restarted to apply the database\'s new zone');
is($node->safe_psql('app', q{SELECT string_agg(DISTINCT time_zone, ',') FROM order_flow.kpi_month}),
	'Asia/Shanghai', '... in the database\'s business zone');
($rc, $out, $err) = in_zone('UTC', 'app', q{
SELECT on_time_rate FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00');
SELECT order_flow.kpi_cache_refresh(1000);
});
is($out, "0\n0", 'a session in UTC reads Shanghai\'s answer from that cache, with nothing to rebuild');

$node->stop;
done_testing();
