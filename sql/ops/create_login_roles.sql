-- Login roles of the webhook and the worker: members of the group roles the migrations
-- grant to (mx_webhook, mx_worker), so each can run only its own private procedures.
-- Passwords come from the environment through psql variables:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 \
--     -v webhook_password="$MX_WEBHOOK_DB_PASSWORD" -v worker_password="$MX_WORKER_DB_PASSWORD" \
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
select format('grant connect on database %I to mx_webhook_login, mx_worker_login', current_database())
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
    and (
        has_database_privilege('mx_webhook_login', d.oid, 'connect')
        or has_database_privilege('mx_worker_login', d.oid, 'connect')
    );
