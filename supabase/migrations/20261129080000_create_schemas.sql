-- Schemas of the project and the privileges every later migration relies on.
--   api      what the Supabase API (PostgREST) exposes: security_invoker views, invoker functions
--   app      tables, RLS on every one
--   private  security definer helpers and the procedures the webhook and worker call
-- Nothing is executable by public unless granted next to the object.

create schema if not exists api;
create schema if not exists app;
create schema if not exists private;

comment on schema api is 'Dashboard API exposed through PostgREST: views and invoker functions only.';
comment on schema app is 'Tables of the membership dashboard; row-level security on every table.';
comment on schema private is 'Definer helpers and the procedures of the webhook and the worker.';

revoke all on schema app, private from public;
revoke all on schema api from public;

-- Functions are not executable by public by default, anywhere in our schemas.
alter default privileges revoke execute on functions from public;
alter default privileges in schema api revoke execute on functions from public;
alter default privileges in schema app revoke execute on functions from public;
alter default privileges in schema private revoke execute on functions from public;

-- Clients reach the dashboard through api; the tables under it are granted per column
-- and operation in the migrations that create them (security_invoker views need that).
grant usage on schema api to authenticated;
grant usage on schema app to authenticated;

-- pgmq: the extension on Supabase; a local database already has it from the platform layer.
do $pgmq$
begin
    if not exists (select from pg_catalog.pg_namespace where nspname = 'pgmq') then
        create extension pgmq;
    end if;
end
$pgmq$;
