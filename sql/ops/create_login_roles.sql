-- Login roles of the webhook and the worker: members of the group roles the migrations
-- grant to (mx_webhook, mx_worker), so each can run only its own private procedures.
-- Passwords come from the environment through psql variables:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 \
--     -v webhook_password="$MX_WEBHOOK_DB_PASSWORD" -v worker_password="$MX_WORKER_DB_PASSWORD" \
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
