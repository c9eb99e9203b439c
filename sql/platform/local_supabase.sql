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
-- Local Auth: what Supabase Auth (GoTrue) does for the dashboard, where no Auth server runs.
-- Passwords are bcrypt hashes in auth.users.encrypted_password, as Supabase Auth stores them
-- (pgcrypto's crypt() with gen_salt('bf') writes the same $2a$ form). Refresh tokens rotate
-- and a reused (revoked) one ends its whole session, as GoTrue's reuse detection does. The
-- dashboard signs access tokens with its local secret (HS256, like a project's JWT secret)
-- and verifies them with the same code as Supabase's. Only the dashboard's login role may
-- call these (granted by sql/ops/create_login_roles.sql); tokens are stored as sha256 only.
-- ---------------------------------------------------------------------------
alter table auth.users add column if not exists encrypted_password text;
alter table auth.users add column if not exists email_confirmed_at timestamptz;
alter table auth.users add column if not exists invited_at timestamptz;
alter table auth.users add column if not exists last_sign_in_at timestamptz;

create table if not exists auth.local_refresh_tokens (
    token_hash text primary key,
    user_id uuid not null references auth.users (id) on delete cascade,
    session_id uuid not null,
    revoked boolean not null default false,
    revoked_at timestamptz,
    session_ended boolean not null default false,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null
);
alter table auth.local_refresh_tokens add column if not exists revoked_at timestamptz;
alter table auth.local_refresh_tokens add column if not exists session_ended boolean not null default false;
create index if not exists local_refresh_tokens_session_idx on auth.local_refresh_tokens (session_id);
revoke all on auth.local_refresh_tokens from public;
comment on table auth.local_refresh_tokens is
'Local Auth stand-in: refresh tokens (sha256 of the token), rotated on use.';

create table if not exists auth.local_one_time_tokens (
    token_hash text primary key,
    user_id uuid not null references auth.users (id) on delete cascade,
    kind text not null check (kind in ('invite', 'magiclink')),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);
revoke all on auth.local_one_time_tokens from public;
comment on table auth.local_one_time_tokens is
'Local Auth stand-in: invitation and magic-link tokens (sha256 of the token), used once.';

create or replace function auth.local_token_hash(p_token text)
returns text
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(p_token, 'UTF8')), 'hex')
$$;
comment on function auth.local_token_hash(text) is 'Local Auth stand-in: how a token is stored.';

-- A new random token (two random UUIDs' worth, 244 bits) stored as its hash.
create or replace function auth.local_new_refresh_token(
    p_user_id uuid, p_session_id uuid, p_ttl_seconds integer
)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_token text := pg_catalog.replace(
        pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''
    );
begin
    insert into auth.local_refresh_tokens (token_hash, user_id, session_id, expires_at)
    values (
        auth.local_token_hash(v_token), p_user_id, p_session_id,
        pg_catalog.now() + pg_catalog.make_interval(secs => p_ttl_seconds)
    );
    return v_token;
end
$$;
comment on function auth.local_new_refresh_token(uuid, uuid, integer) is
'Local Auth stand-in: issue a refresh token in a session.';
revoke all on function auth.local_new_refresh_token(uuid, uuid, integer) from public;

-- Sign in with e-mail and password: a row (user, e-mail, session, refresh token) or none.
create or replace function auth.local_sign_in(p_email text, p_password text, p_ttl_seconds integer)
returns table (user_id uuid, email text, session_id uuid, refresh_token text)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user auth.users;
    v_session uuid := pg_catalog.gen_random_uuid();
begin
    if pg_catalog.to_regprocedure('extensions.crypt(text, text)') is null then
        raise exception 'local sign-in needs pgcrypto (crypt)' using errcode = '0A000';
    end if;
    select u.* into v_user from auth.users as u
    where pg_catalog.lower(u.email) = pg_catalog.lower(pg_catalog.btrim(p_email));
    if v_user.id is null or v_user.encrypted_password is null or p_password is null then
        return;
    end if;
    if extensions.crypt(p_password, v_user.encrypted_password) <> v_user.encrypted_password then
        return;
    end if;
    update auth.users as u set last_sign_in_at = pg_catalog.now() where u.id = v_user.id;
    return query select v_user.id, v_user.email, v_session,
        auth.local_new_refresh_token(v_user.id, v_session, p_ttl_seconds);
end
$$;
comment on function auth.local_sign_in(text, text, integer) is
'Local Auth stand-in: check an e-mail and bcrypt password; a new session and refresh token.';
revoke all on function auth.local_sign_in(text, text, integer) from public;

-- Exchange a refresh token for a new one (rotation). A revoked token presented again means
-- it leaked: the whole session is revoked and nothing is returned, except within 10 seconds
-- of its rotation (GoTrue's reuse interval: a browser's parallel requests refresh at once).
create or replace function auth.local_refresh(p_refresh_token text, p_ttl_seconds integer)
returns table (user_id uuid, email text, session_id uuid, refresh_token text)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row auth.local_refresh_tokens;
begin
    select t.* into v_row from auth.local_refresh_tokens as t
    where t.token_hash = auth.local_token_hash(p_refresh_token)
    for update;
    if v_row.token_hash is null or v_row.expires_at < pg_catalog.now() then
        return;
    end if;
    if v_row.revoked and v_row.revoked_at < pg_catalog.now() - interval '10 seconds' then
        update auth.local_refresh_tokens as t
        set revoked = true, revoked_at = coalesce(t.revoked_at, pg_catalog.now()), session_ended = true
        where t.session_id = v_row.session_id;
        return;
    end if;
    if v_row.session_ended then
        return;  -- signed out, or ended for a reused token
    end if;
    update auth.local_refresh_tokens as t set revoked = true, revoked_at = coalesce(t.revoked_at, pg_catalog.now())
    where t.token_hash = v_row.token_hash;
    return query select u.id, u.email, v_row.session_id,
        auth.local_new_refresh_token(u.id, v_row.session_id, p_ttl_seconds)
    from auth.users as u where u.id = v_row.user_id;
end
$$;
comment on function auth.local_refresh(text, integer) is
'Local Auth stand-in: rotate a refresh token; reuse of a revoked one revokes its session.';
revoke all on function auth.local_refresh(text, integer) from public;

create or replace function auth.local_sign_out(p_refresh_token text)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    update auth.local_refresh_tokens as t
    set revoked = true, revoked_at = coalesce(t.revoked_at, pg_catalog.now()), session_ended = true
    where t.session_id in (
        select s.session_id from auth.local_refresh_tokens as s
        where s.token_hash = auth.local_token_hash(p_refresh_token)
    )
$$;
comment on function auth.local_sign_out(text) is
'Local Auth stand-in: sign out (revoke every refresh token of the session).';
revoke all on function auth.local_sign_out(text) from public;

create or replace function auth.local_new_one_time_token(p_user_id uuid, p_kind text, p_ttl_seconds integer)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_token text := pg_catalog.replace(
        pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text, '-', ''
    );
begin
    insert into auth.local_one_time_tokens (token_hash, user_id, kind, expires_at)
    values (
        auth.local_token_hash(v_token), p_user_id, p_kind,
        pg_catalog.now() + pg_catalog.make_interval(secs => p_ttl_seconds)
    );
    if p_kind = 'invite' then
        update auth.users as u set invited_at = pg_catalog.now() where u.id = p_user_id;
    end if;
    return v_token;
end
$$;
comment on function auth.local_new_one_time_token(uuid, text, integer) is
'Local Auth stand-in: an invitation or magic-link token for a user (the operator invites).';
revoke all on function auth.local_new_one_time_token(uuid, text, integer) from public;

-- A magic link for an e-mail: the token, or null for an unknown e-mail (the caller answers
-- the same either way).
create or replace function auth.local_magic_link(p_email text, p_ttl_seconds integer)
returns text
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    select auth.local_new_one_time_token(u.id, 'magiclink', p_ttl_seconds)
    from auth.users as u where pg_catalog.lower(u.email) = pg_catalog.lower(pg_catalog.btrim(p_email))
$$;
comment on function auth.local_magic_link(text, integer) is
'Local Auth stand-in: a magic-link token for an e-mail (null when unknown).';
revoke all on function auth.local_magic_link(text, integer) from public;

-- Use an invitation or magic-link token once; an invitation also sets the password.
create or replace function auth.local_verify_one_time_token(
    p_token text, p_password text, p_ttl_seconds integer
)
returns table (user_id uuid, email text, session_id uuid, refresh_token text)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row auth.local_one_time_tokens;
    v_session uuid := pg_catalog.gen_random_uuid();
begin
    update auth.local_one_time_tokens as t set used_at = pg_catalog.now()
    where t.token_hash = auth.local_token_hash(p_token) and t.used_at is null
        and t.expires_at > pg_catalog.now()
    returning t.* into v_row;
    if v_row.token_hash is null then
        return;
    end if;
    if v_row.kind = 'invite' then
        if p_password is null or pg_catalog.length(p_password) < 8 then
            raise exception 'the password must have at least 8 characters' using errcode = '22023';
        end if;
        update auth.users as u
        set encrypted_password = extensions.crypt(p_password, extensions.gen_salt('bf')),
            email_confirmed_at = coalesce(u.email_confirmed_at, pg_catalog.now())
        where u.id = v_row.user_id;
    end if;
    return query select u.id, u.email, v_session,
        auth.local_new_refresh_token(u.id, v_session, p_ttl_seconds)
    from auth.users as u where u.id = v_row.user_id;
end
$$;
comment on function auth.local_verify_one_time_token(text, text, integer) is
'Local Auth stand-in: use an invitation (sets the password) or magic-link token; a new session.';
revoke all on function auth.local_verify_one_time_token(text, text, integer) from public;

-- The operator's (and the demo's) way to give a user a password directly.
create or replace function auth.local_set_password(p_user_id uuid, p_password text)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    -- PL/pgSQL: created (and the layer applied) even where pgcrypto is missing; used, it says so
    if pg_catalog.to_regprocedure('extensions.crypt(text, text)') is null then
        raise exception 'local passwords need pgcrypto (crypt)' using errcode = '0A000';
    end if;
    update auth.users as u
    set encrypted_password = extensions.crypt(p_password, extensions.gen_salt('bf')),
        email_confirmed_at = coalesce(u.email_confirmed_at, pg_catalog.now())
    where u.id = p_user_id;
end
$$;
comment on function auth.local_set_password(uuid, text) is
'Local Auth stand-in: set a user''s bcrypt password (database owner only).';
revoke all on function auth.local_set_password(uuid, text) from public;

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
