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
#     new zone; a session connecting in another zone is served that cache;
#   - in a database still at 1.1 (the 1.2 library, the SQL not yet
#     updated) the metrics read dates in the session's zone, as 1.1's SQL
#     expects; and a schema named _order_flow that a user made there is not
#     taken for the extension's (the scheduler would call its functions).
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
$node->safe_psql('app', march_order_sql('orders', 1));
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

# ------------------------------------------------------------ a database still at 1.1
# Between a package upgrade and ALTER EXTENSION UPDATE the 1.2 library serves
# 1.1's SQL, which keys the kpi() cache by the session's TimeZone: the
# library reads dates in the session's zone there, as 1.1 did.
$node->safe_psql('postgres', 'CREATE DATABASE old11');
$node->safe_psql('old11', q{CREATE EXTENSION order_flow VERSION '1.1'});
$node->safe_psql('old11', march_order_sql('orders', 1));
my $march = q{SELECT on_time_rate FROM order_flow.kpi('2024-03-01 00:00+00', '2024-04-01 00:00+00')};
($rc, $out, $err) = in_zone('Asia/Tokyo', 'old11', $march);
my $tokyo = $out;
($rc, $out, $err) = in_zone('UTC', 'old11', $march);
is("$tokyo $out", '0 1', 'at 1.1 a session in Tokyo finds the order late, one in UTC on time, as 1.1 did');

# a schema named _order_flow that is not the extension's is not the helpers'
# schema: in a 1.1 database, a role that may create schemas creates one, with
# functions of the helpers' names that the scheduler (a superuser) calls
$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
GRANT CREATE ON DATABASE old11 TO mallory;
});
($rc, $out, $err) = in_zone('UTC', 'old11', q{
CREATE SCHEMA _order_flow;
CREATE FUNCTION _order_flow._next_due() RETURNS timestamptz LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'mallory''s _next_due was called'; END $$;
CREATE FUNCTION _order_flow._escalate_notifications(timestamptz, integer) RETURNS integer LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'mallory''s _escalate_notifications was called'; END $$;
}, 'mallory');
is($rc, 0, 'a role with CREATE on a 1.1 database makes a schema _order_flow of its own') or diag($err);
my $log_at = -s $node->logfile;
# the scheduler's pass after the next naptime (1 s) would call them
$node->safe_psql('old11', q{UPDATE orders SET status = 'in_transit' WHERE id = 1});
sleep 3;
my $log = slurp_file($node->logfile, $log_at);
unlike($log, qr/mallory's/, 'the scheduler does not call the functions of a schema that is not the extension\'s');
is($node->safe_psql('old11', q{SELECT count(*) FROM pg_stat_activity
                                WHERE datname = 'old11' AND application_name = 'order_flow scheduler'}),
	'1', '... and goes on serving the database');

$node->stop;
done_testing();
