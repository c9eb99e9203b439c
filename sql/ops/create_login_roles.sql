-- Login roles of the webhook and the worker: members of the group roles the migrations
-- grant to (mx_webhook, mx_worker), so each can run only its own private procedures.
-- Passwords come from the environment through psql variables:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 \
--     -v webhook_password="$MX_WEBHOOK_DB_PASSWORD" -v worker_password="$MX_WORKER_DB_PASSWORD" \
--     -v dashboard_password="$MX_DASHBOARD_DB_PASSWORD" \
--     -f sql/ops/create_login_roles.sql
--
-- On a server that holds only this project, add `-v restrict_other_databases=on`: then the
-- login roles can connect to this database only (see "Connections" below).
--
-- Safe to run again: it creates what is missing and resets passwords and settings.

do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'mx_webhook_login') then
        create role mx_webhook_login login inherit in role mx_webhook;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'mx_worker_login') then
        create role mx_worker_login login inherit in role mx_worker;
    end if;
end
$roles$;

alter role mx_webhook_login password :'webhook_password';
alter role mx_worker_login password :'worker_password';

-- A stuck statement or an abandoned transaction must not hold back vacuum of the queue
-- tables: bound both for the services.
alter role mx_webhook_login set statement_timeout = '5s';
alter role mx_webhook_login set idle_in_transaction_session_timeout = '10s';
alter role mx_worker_login set statement_timeout = '30s';
alter role mx_worker_login set idle_in_transaction_session_timeout = '60s';

-- The dashboard's login role: no privilege of its own beyond becoming `authenticated` (as
-- Supabase's `authenticator` does for PostgREST). NOINHERIT: as itself it reads nothing; per
-- transaction it sets role authenticated and the verified token's claims, so RLS decides
-- everything it reads or writes. Created when psql is given -v dashboard_password=...
\if :{?dashboard_password}
do $dashboard$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'mx_dashboard_login') then
        create role mx_dashboard_login login noinherit;
    end if;
end
$dashboard$;
grant authenticated to mx_dashboard_login;
alter role mx_dashboard_login password :'dashboard_password';
alter role mx_dashboard_login set statement_timeout = '10s';
alter role mx_dashboard_login set idle_in_transaction_session_timeout = '30s';
-- Where the local platform layer plays Supabase Auth (never on Supabase itself), the
-- dashboard may call its sign-in functions; they are definers that answer for the
-- credentials or tokens given, never a list of users.
do $local_auth$
begin
    if pg_catalog.to_regprocedure('auth.local_sign_in(text, text, integer)') is not null then
        grant usage on schema auth to mx_dashboard_login;
        grant execute on function
            auth.local_sign_in(text, text, integer),
            auth.local_refresh(text, integer),
            auth.local_sign_out(text),
            auth.local_magic_link(text, integer),
            auth.local_verify_one_time_token(text, text, integer)
        to mx_dashboard_login;
    end if;
end
$local_auth$;
\endif

-- ---------------------------------------------------------------------------
-- Only what the services need (issue 12, item 9)
-- ---------------------------------------------------------------------------
-- Large objects: nothing in the project uses them, yet any role could create them in any
-- database (EXECUTE on the creating functions is granted to PUBLIC). Revoked in this database.
-- Temporary objects: the migrations revoke TEMPORARY on the database they run in from PUBLIC;
-- a database copied from a template (createdb -T) starts with the default ACL again, so the
-- revoke is repeated here for the database the services use.
revoke execute on function
pg_catalog.lo_create(oid),
pg_catalog.lo_creat(integer),
pg_catalog.lo_from_bytea(oid, bytea),
pg_catalog.lo_import(text),
pg_catalog.lo_import(text, oid)
from public;
select format('revoke temporary on database %I from public', current_database())
\gexec

-- Connections: CONNECT on every database is granted to PUBLIC, and Postgres has no per-role
-- "deny". The login roles get CONNECT on this database by name; with
-- `-v restrict_other_databases=on` (a server that holds only this project), CONNECT is also
-- revoked from PUBLIC on every other database this user may change, so the login roles reach
-- this database only (owners and superusers keep theirs). Either way the script ends by
-- listing the other databases the login roles can still reach; pg_hba.conf is the other
-- place to restrict them where it is yours to edit.
select format('grant connect on database %I to %I', current_database(), r.rolname)
from pg_catalog.pg_roles as r
where r.rolname in ('mx_webhook_login', 'mx_worker_login', 'mx_dashboard_login')
\gexec

\if :{?restrict_other_databases}
\else
\set restrict_other_databases off
\endif
\if :restrict_other_databases
select format('revoke connect on database %I from public', d.datname)
from pg_catalog.pg_database as d
where d.datname <> current_database()
    and d.datallowconn
    -- a superuser is a member of every role
    and pg_catalog.pg_has_role(d.datdba, 'member')
\gexec
\endif

select
    coalesce(
        'the login roles can still connect to: ' || string_agg(d.datname, ', ' order by d.datname),
        'the login roles can connect to this database only'
    ) as other_databases
from pg_catalog.pg_database as d
where d.datname <> current_database()
    and d.datallowconn
    and exists (
        select from pg_catalog.pg_roles as r
        where r.rolname in ('mx_webhook_login', 'mx_worker_login', 'mx_dashboard_login')
            and has_database_privilege(r.oid, d.oid, 'connect')
    );
