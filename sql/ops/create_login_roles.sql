-- Login roles of the webhook and the worker: members of the group roles the migrations
-- grant to (mx_webhook, mx_worker), so each can run only its own private procedures.
-- Passwords come from the environment through psql variables:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 \
--     -v webhook_password="$MX_WEBHOOK_DB_PASSWORD" -v worker_password="$MX_WORKER_DB_PASSWORD" \
--     -v dashboard_password="$MX_DASHBOARD_DB_PASSWORD" \
--     -f sql/ops/create_login_roles.sql
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
