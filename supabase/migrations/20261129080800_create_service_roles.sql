-- Group roles of the two services. They cannot log in; the ops script
-- sql/ops/create_login_roles.sql creates login roles that are members of them, with
-- passwords from the environment. Each may run only its own private procedures.

do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'mx_webhook') then
        create role mx_webhook nologin noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'mx_worker') then
        create role mx_worker nologin noinherit;
    end if;
end
$roles$;

grant usage on schema private to mx_webhook, mx_worker;

grant execute on function private.ingest_webhook(text, jsonb, text, text) to mx_webhook;

grant execute on function private.claim_ingest_events(integer, integer) to mx_worker;
grant execute on function private.extend_ingest_visibility(bigint, integer) to mx_worker;
grant execute on function private.retry_ingest_event(bigint, bigint, text, integer) to mx_worker;
grant execute on function private.dead_letter_ingest_event(bigint, bigint, text, boolean) to mx_worker;
grant execute on function private.apply_payment_event(bigint, bigint, timestamptz, jsonb, jsonb, jsonb)
to mx_worker;
grant execute on function private.merchant_credentials(uuid) to mx_worker;
