-- Local platform layer: the parts of a Supabase project that plain Postgres lacks.
--
-- Applied by `scripts/localdb.py` to local and test databases only. On a real
-- Supabase database (role `supabase_admin` present) it is never applied. Every
-- statement is idempotent so the layer can be re-applied to the same database.
-- pgmq is installed separately from the `pgmq` Python package's bundled SQL,
-- because that SQL is not idempotent and lives in the package, not here.

-- ---------------------------------------------------------------------------
-- Roles, as Supabase defines them (cluster-wide, so created only once)
-- ---------------------------------------------------------------------------
do $roles$
begin
    if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
    if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
        create role authenticator login noinherit;
    end if;
end
$roles$;

grant anon to authenticator;
grant authenticated to authenticator;
grant service_role to authenticator;

-- ---------------------------------------------------------------------------
-- Schema extensions (Supabase installs extensions there)
-- ---------------------------------------------------------------------------
create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;

-- ---------------------------------------------------------------------------
-- Schema auth: users and the JWT helpers PostgREST requests rely on
-- ---------------------------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
    id uuid primary key default extensions.gen_random_uuid(),
    email text unique,
    raw_app_meta_data jsonb not null default '{}'::jsonb,
    raw_user_meta_data jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table auth.users is 'Local stand-in for Supabase Auth users (id and e-mail are what the project uses).';

-- Same definitions as Supabase: the claims PostgREST puts in request.jwt.claims.
create or replace function auth.jwt() returns jsonb
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
comment on function auth.jwt() is 'JWT claims of the current request (request.jwt.claims).';

create or replace function auth.uid() returns uuid
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
comment on function auth.uid() is 'Subject (user id) of the current request JWT, or null.';

create or replace function auth.role() returns text
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
comment on function auth.role() is 'Role claim of the current request JWT, or null.';

create or replace function auth.email() returns text
language sql stable
set search_path = ''
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.email', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
$$;
comment on function auth.email() is 'E-mail claim of the current request JWT, or null.';

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email()
to anon, authenticated, service_role;

-- ---------------------------------------------------------------------------
-- Vault: the Supabase Vault interface, backed by pgcrypto.
-- The key lives in a table no client role can read; on Supabase the key lives
-- outside the database, which is the point of the real Vault.
-- ---------------------------------------------------------------------------
create schema if not exists vault;
revoke all on schema vault from public;

create table if not exists vault.local_root_key (
    singleton boolean primary key default true check (singleton),
    key bytea not null default extensions.gen_random_bytes(32)
);
revoke all on vault.local_root_key from public;
insert into vault.local_root_key default values on conflict do nothing;

create table if not exists vault.secrets (
    id uuid primary key default extensions.gen_random_uuid(),
    name text unique,
    description text not null default '',
    secret text not null,
    key_id uuid,
    nonce bytea,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
revoke all on vault.secrets from public;
comment on table vault.secrets is 'Encrypted secrets (local Vault stand-in; pgp_sym_encrypt with a local key).';

create or replace function vault.create_secret(
    new_secret text,
    new_name text default null,
    new_description text default '',
    new_key_id uuid default null
) returns uuid
language sql
security definer
set search_path = ''
as $$
    insert into vault.secrets (name, description, secret, key_id)
    select
        new_name,
        coalesce(new_description, ''),
        encode(extensions.pgp_sym_encrypt(new_secret, encode(k.key, 'hex')), 'base64'),
        new_key_id
    from vault.local_root_key as k
    returning id
$$;
comment on function vault.create_secret(text, text, text, uuid) is 'Store a secret encrypted; returns its id.';

create or replace function vault.update_secret(
    secret_id uuid,
    new_secret text default null,
    new_name text default null,
    new_description text default null,
    new_key_id uuid default null
) returns void
language sql
security definer
set search_path = ''
as $$
    update vault.secrets as s
    set
        secret = coalesce(
            encode(extensions.pgp_sym_encrypt(new_secret, encode(k.key, 'hex')), 'base64'),
            s.secret
        ),
        name = coalesce(new_name, s.name),
        description = coalesce(new_description, s.description),
        key_id = coalesce(new_key_id, s.key_id),
        updated_at = now()
    from vault.local_root_key as k
    where s.id = secret_id
$$;
comment on function vault.update_secret(uuid, text, text, text, uuid) is 'Replace a secret or its metadata.';

create or replace view vault.decrypted_secrets as
select
    s.id,
    s.name,
    s.description,
    s.secret,
    extensions.pgp_sym_decrypt(decode(s.secret, 'base64'), encode(k.key, 'hex')) as decrypted_secret,
    s.key_id,
    s.nonce,
    s.created_at,
    s.updated_at
from vault.secrets as s
cross join vault.local_root_key as k;
revoke all on vault.decrypted_secrets from public;
comment on view vault.decrypted_secrets is 'Secrets in clear: readable by the database owner only.';

revoke all on function vault.create_secret(text, text, text, uuid) from public;
revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;

-- ---------------------------------------------------------------------------
-- Realtime publication (Supabase creates it empty)
-- ---------------------------------------------------------------------------
do $publication$
begin
    if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
        create publication supabase_realtime;
    end if;
end
$publication$;

-- ---------------------------------------------------------------------------
-- Supabase puts extensions on the search path of its sessions (pgTAP lives there).
-- ---------------------------------------------------------------------------
do $search_path$
begin
    execute format(
        'alter database %I set search_path = "$user", public, extensions', current_database()
    );
end
$search_path$;
