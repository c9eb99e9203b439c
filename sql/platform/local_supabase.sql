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
do $pgcrypto$
begin
    if exists (select from pg_catalog.pg_available_extensions where name = 'pgcrypto') then
        create extension if not exists pgcrypto with schema extensions;
    else
        -- the embedded Postgres (pgserver) ships no contrib extensions
        raise notice 'pgcrypto is not available: the local Vault keeps secrets unencrypted '
        '(only the database owner can read them)';
    end if;
end
$pgcrypto$;

-- ---------------------------------------------------------------------------
-- Schema auth: users and the JWT helpers PostgREST requests rely on
-- ---------------------------------------------------------------------------
create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

create table if not exists auth.users (
    id uuid primary key default pg_catalog.gen_random_uuid(),
    email text unique,
    raw_app_meta_data jsonb not null default '{}'::jsonb,
    raw_user_meta_data jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table auth.users is 'Local stand-in for Supabase Auth users (id and e-mail are what the project uses).';
-- As on Supabase: when the address was confirmed, and when the account was invited (member add).
alter table auth.users add column if not exists email_confirmed_at timestamptz;
alter table auth.users add column if not exists invited_at timestamptz;

-- Same definitions as Supabase: the claims PostgREST puts in request.jwt.claims. Like
-- Supabase's, they carry no SET clause (their bodies name only pg_catalog functions), so the
-- planner inlines them: a `set search_path` here made every auth.uid() a function call.
create or replace function auth.jwt() returns jsonb
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
comment on function auth.jwt() is 'JWT claims of the current request (request.jwt.claims).';

create or replace function auth.uid() returns uuid
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
$$;
comment on function auth.uid() is 'Subject (user id) of the current request JWT, or null.';

create or replace function auth.role() returns text
language sql stable
as $$
    select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
$$;
comment on function auth.role() is 'Role claim of the current request JWT, or null.';

create or replace function auth.email() returns text
language sql stable
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
    -- 32 bytes derived from two random UUIDs: built in, so it works without pgcrypto
    key bytea not null default pg_catalog.sha256(
        pg_catalog.convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')
    )
);
revoke all on vault.local_root_key from public;
insert into vault.local_root_key default values on conflict do nothing;

create table if not exists vault.secrets (
    id uuid primary key default pg_catalog.gen_random_uuid(),
    name text unique,
    description text not null default '',
    secret text not null,
    key_id uuid,
    nonce bytea,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
revoke all on vault.secrets from public;
comment on table vault.secrets is 'Secrets (local Vault stand-in; pgp_sym_encrypt with a local key where pgcrypto exists).';

-- Encrypt with pgcrypto where it exists; without it (embedded Postgres) the secret is kept
-- as is, marked "plain:", readable by the database owner only, like the encrypted form.
create or replace function vault.local_encrypt(secret text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_out text;
begin
    if pg_catalog.to_regprocedure('extensions.pgp_sym_encrypt(text, text)') is null then
        return 'plain:' || secret;
    end if;
    execute 'select encode(extensions.pgp_sym_encrypt($1, encode(k.key, ''hex'')), ''base64'')
        from vault.local_root_key as k'
    into v_out using secret;
    return v_out;
end
$$;
comment on function vault.local_encrypt(text) is 'Local Vault stand-in: encrypt a secret for storage.';

create or replace function vault.local_decrypt(stored text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_out text;
begin
    if stored like 'plain:%' then
        return substr(stored, 7);
    end if;
    execute 'select extensions.pgp_sym_decrypt(decode($1, ''base64''), encode(k.key, ''hex''))
        from vault.local_root_key as k'
    into v_out using stored;
    return v_out;
end
$$;
comment on function vault.local_decrypt(text) is 'Local Vault stand-in: a stored secret in clear.';

revoke all on function vault.local_encrypt(text) from public;
revoke all on function vault.local_decrypt(text) from public;

create or replace function vault.create_secret(
    new_secret text,
    new_name text default null,
    new_description text default '',
    new_key_id uuid default null
) returns uuid
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    insert into vault.secrets (name, description, secret, key_id)
    values (new_name, coalesce(new_description, ''), vault.local_encrypt(new_secret), new_key_id)
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
set search_path = pg_catalog, pg_temp
as $$
    update vault.secrets as s
    set
        secret = coalesce(vault.local_encrypt(new_secret), s.secret),
        name = coalesce(new_name, s.name),
        description = coalesce(new_description, s.description),
        key_id = coalesce(new_key_id, s.key_id),
        updated_at = now()
    where s.id = secret_id
$$;
comment on function vault.update_secret(uuid, text, text, text, uuid) is 'Replace a secret or its metadata.';

create or replace view vault.decrypted_secrets as
select
    s.id,
    s.name,
    s.description,
    s.secret,
    vault.local_decrypt(s.secret) as decrypted_secret,
    s.key_id,
    s.nonce,
    s.created_at,
    s.updated_at
from vault.secrets as s;
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
