-- One database and one login role per service (DESIGN §1: each service owns its data; nobody
-- reads another service's tables), one for the console (控制台: accounts, sessions, audit) and one
-- for the reports process (report days, deadline warnings, its outbox), one for notify (its
-- notifications outbox), one for market (商超保供: orders, parcels, household addresses).
-- Run once, by the postgres image's entrypoint on an empty data directory (docker-compose.yml
-- mounts this file into /docker-entrypoint-initdb.d/), or by hand:
--   INTAKE_DB_PASSWORD=… ALLOCATION_DB_PASSWORD=… LOGISTICS_DB_PASSWORD=… MONITORING_DB_PASSWORD=… \
--   CONSOLE_DB_PASSWORD=… REPORTS_DB_PASSWORD=… NOTIFY_DB_PASSWORD=… MARKET_DB_PASSWORD=… psql -v ON_ERROR_STOP=1 -U postgres -f deploy/postgres/init.sql
-- The passwords come from the environment (psql 15+ \getenv), never from this file.
-- The tables themselves are made by `supplyctl migrate` (the `migrate` service in compose).

\set ON_ERROR_STOP on

\getenv intake_password INTAKE_DB_PASSWORD
\getenv allocation_password ALLOCATION_DB_PASSWORD
\getenv logistics_password LOGISTICS_DB_PASSWORD
\getenv monitoring_password MONITORING_DB_PASSWORD
\getenv console_password CONSOLE_DB_PASSWORD
\getenv reports_password REPORTS_DB_PASSWORD
\getenv notify_password NOTIFY_DB_PASSWORD
\getenv market_password MARKET_DB_PASSWORD

\if :{?intake_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'INTAKE_DB_PASSWORD is not set'; END $$;
\endif
\if :{?allocation_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'ALLOCATION_DB_PASSWORD is not set'; END $$;
\endif
\if :{?logistics_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'LOGISTICS_DB_PASSWORD is not set'; END $$;
\endif
\if :{?monitoring_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'MONITORING_DB_PASSWORD is not set'; END $$;
\endif
\if :{?console_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'CONSOLE_DB_PASSWORD is not set'; END $$;
\endif
\if :{?reports_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'REPORTS_DB_PASSWORD is not set'; END $$;
\endif
\if :{?notify_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'NOTIFY_DB_PASSWORD is not set'; END $$;
\endif
\if :{?market_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'MARKET_DB_PASSWORD is not set'; END $$;
\endif

-- passwords are stored as SCRAM hashes (the default of PostgreSQL 14+)
SET password_encryption = 'scram-sha-256';

CREATE ROLE intake LOGIN PASSWORD :'intake_password';
CREATE ROLE allocation LOGIN PASSWORD :'allocation_password';
CREATE ROLE logistics LOGIN PASSWORD :'logistics_password';
CREATE ROLE monitoring LOGIN PASSWORD :'monitoring_password';
CREATE ROLE console LOGIN PASSWORD :'console_password';
CREATE ROLE reports LOGIN PASSWORD :'reports_password';
CREATE ROLE notify LOGIN PASSWORD :'notify_password';
CREATE ROLE market LOGIN PASSWORD :'market_password';

CREATE DATABASE intake OWNER intake ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE allocation OWNER allocation ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE logistics OWNER logistics ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE monitoring OWNER monitoring ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE console OWNER console ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE reports OWNER reports ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE notify OWNER notify ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE market OWNER market ENCODING 'UTF8' TEMPLATE template0;

-- only its own role (and the superuser, for pg_dump) may connect to a service's database
REVOKE ALL ON DATABASE intake FROM PUBLIC;
REVOKE ALL ON DATABASE allocation FROM PUBLIC;
REVOKE ALL ON DATABASE logistics FROM PUBLIC;
REVOKE ALL ON DATABASE monitoring FROM PUBLIC;
REVOKE ALL ON DATABASE console FROM PUBLIC;
REVOKE ALL ON DATABASE reports FROM PUBLIC;
REVOKE ALL ON DATABASE notify FROM PUBLIC;
REVOKE ALL ON DATABASE market FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE intake TO intake;
GRANT CONNECT, TEMPORARY ON DATABASE allocation TO allocation;
GRANT CONNECT, TEMPORARY ON DATABASE logistics TO logistics;
GRANT CONNECT, TEMPORARY ON DATABASE monitoring TO monitoring;
GRANT CONNECT, TEMPORARY ON DATABASE console TO console;
GRANT CONNECT, TEMPORARY ON DATABASE reports TO reports;
GRANT CONNECT, TEMPORARY ON DATABASE notify TO notify;
GRANT CONNECT, TEMPORARY ON DATABASE market TO market;

-- a bound per service, so that one service leaking connections cannot starve the others. At
-- most per process: api 40 (pool 20 + overflow 20), worker and ingest 8, relay 4; 150 covers two
-- api replicas and the rest. The console's web process takes at most 20 (pool 10 + overflow 10);
-- 50 covers two replicas and supplyctl user. Keep 4 × 150 + 50 + a few below the server's
-- max_connections (compose: 800; market adds 60).
ALTER ROLE intake CONNECTION LIMIT 150;
ALTER ROLE allocation CONNECTION LIMIT 150;
ALTER ROLE logistics CONNECTION LIMIT 150;
ALTER ROLE monitoring CONNECTION LIMIT 150;
ALTER ROLE console CONNECTION LIMIT 50;
ALTER ROLE reports CONNECTION LIMIT 20;  -- one process: pool 4 + overflow 4, and supplyctl
ALTER ROLE notify CONNECTION LIMIT 20;  -- the notify worker: pool 4 + overflow 4, and supplyctl
ALTER ROLE market CONNECTION LIMIT 60;  -- api pool 10 + overflow 10, worker 8, relay 4, and supplyctl

-- sessions in UTC: the services store UTC instants and convert to county time themselves
ALTER ROLE intake SET timezone = 'UTC';
ALTER ROLE allocation SET timezone = 'UTC';
ALTER ROLE logistics SET timezone = 'UTC';
ALTER ROLE monitoring SET timezone = 'UTC';
ALTER ROLE console SET timezone = 'UTC';
ALTER ROLE reports SET timezone = 'UTC';
ALTER ROLE notify SET timezone = 'UTC';
ALTER ROLE market SET timezone = 'UTC';
