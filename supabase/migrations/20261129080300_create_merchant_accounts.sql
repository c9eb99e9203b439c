-- MX Merchant accounts of a practice, their API credentials (in Vault) and the
-- webhook tokens that authenticate MX Merchant's notifications.

create table app.merchant_accounts (
    id uuid primary key default gen_random_uuid(),
    practice_id uuid not null references app.practices (id) on delete restrict,
    mx_merchant_id bigint not null unique,
    name text not null default '',
    environment text not null default 'production' check (environment in ('sandbox', 'production')),
    is_active boolean not null default true,
    -- Vault secret id holding {"consumer_key", "consumer_secret"}; no client role may read it.
    credentials_secret_id uuid,
    credentials_failed_at timestamptz,
    credentials_error text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index merchant_accounts_practice_id_idx on app.merchant_accounts (practice_id);
comment on table app.merchant_accounts is
'An MX Merchant account (merchant id) and the practice it belongs to.';

create trigger merchant_accounts_touch_updated_at
before update on app.merchant_accounts
for each row execute function private.touch_updated_at();

create table app.webhook_tokens (
    id uuid primary key default gen_random_uuid(),
    merchant_account_id uuid not null references app.merchant_accounts (id) on delete cascade,
    -- sha256 of the token in the callback URL; the token itself is never stored.
    token_hash bytea not null unique check (length(token_hash) = 32),
    created_at timestamptz not null default now(),
    retired_at timestamptz
);
create index webhook_tokens_merchant_account_id_idx on app.webhook_tokens (merchant_account_id);
comment on table app.webhook_tokens is
'Hashes of the callback-URL tokens of a merchant account; several may be valid during a rotation.';

alter table app.merchant_accounts enable row level security;
alter table app.webhook_tokens enable row level security;

-- Members see their practice's accounts, never the credentials column.
grant select (
    id, practice_id, mx_merchant_id, name, environment, is_active,
    credentials_failed_at, credentials_error, created_at, updated_at
) on app.merchant_accounts to authenticated;

create policy merchant_accounts_select on app.merchant_accounts
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

-- webhook_tokens: no grant and no policy for any client role. Only definer
-- procedures (ingest, operator commands) touch it.

create function private.hash_webhook_token(token text)
returns bytea
language sql
immutable
set search_path = ''
as $$
    select pg_catalog.sha256(pg_catalog.convert_to(token, 'UTF8'))
$$;
comment on function private.hash_webhook_token(text) is 'sha256 of a callback-URL token.';

-- Operator procedures (called by the operator CLI as the database owner).
create function private.upsert_merchant_account(
    p_practice_id uuid,
    p_mx_merchant_id bigint,
    p_name text,
    p_environment text,
    p_consumer_key text,
    p_consumer_secret text
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_account_id uuid;
    v_secret_id uuid;
    v_secret text := pg_catalog.json_build_object(
        'consumer_key', p_consumer_key, 'consumer_secret', p_consumer_secret
    )::text;
begin
    insert into app.merchant_accounts (practice_id, mx_merchant_id, name, environment)
    values (p_practice_id, p_mx_merchant_id, coalesce(p_name, ''), p_environment)
    on conflict (mx_merchant_id) do update
    set practice_id = excluded.practice_id,
        name = excluded.name,
        environment = excluded.environment,
        is_active = true
    returning id, credentials_secret_id into v_account_id, v_secret_id;

    if p_consumer_key is not null then
        if v_secret_id is null then
            v_secret_id := vault.create_secret(
                v_secret, 'mx-merchant-' || p_mx_merchant_id, 'MX Merchant API key'
            );
            update app.merchant_accounts
            set credentials_secret_id = v_secret_id
            where id = v_account_id;
        else
            perform vault.update_secret(v_secret_id, v_secret);
        end if;
        update app.merchant_accounts
        set credentials_failed_at = null, credentials_error = null
        where id = v_account_id;
    end if;
    return v_account_id;
end
$$;
comment on function private.upsert_merchant_account(uuid, bigint, text, text, text, text) is
'Create or update a merchant account; credentials (when given) go to Vault.';

create function private.add_webhook_token(p_merchant_account_id uuid, p_token text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if length(p_token) < 22 then
        raise exception 'webhook token too short: at least 128 random bits are required'
        using errcode = '22023';
    end if;
    insert into app.webhook_tokens (merchant_account_id, token_hash)
    values (p_merchant_account_id, private.hash_webhook_token(p_token))
    returning id into v_id;
    return v_id;
end
$$;
comment on function private.add_webhook_token(uuid, text) is
'Register a new callback-URL token (stored hashed); older tokens stay valid until retired.';

create function private.retire_webhook_tokens(p_merchant_account_id uuid, p_keep_token_id uuid)
returns integer
language sql
security definer
set search_path = ''
as $$
    with retired as (
        update app.webhook_tokens
        set retired_at = now()
        where merchant_account_id = p_merchant_account_id
            and id <> p_keep_token_id
            and retired_at is null
        returning 1
    )
    select count(*)::integer from retired
$$;
comment on function private.retire_webhook_tokens(uuid, uuid) is
'End a token rotation: retire every token of the account but the one kept.';

create function private.merchant_credentials(p_merchant_account_id uuid)
returns table (mx_merchant_id bigint, environment text, consumer_key text, consumer_secret text)
language sql
stable
security definer
set search_path = ''
as $$
    select
        m.mx_merchant_id,
        m.environment,
        (s.decrypted_secret::jsonb ->> 'consumer_key'),
        (s.decrypted_secret::jsonb ->> 'consumer_secret')
    from app.merchant_accounts as m
    inner join vault.decrypted_secrets as s on s.id = m.credentials_secret_id
    where m.id = p_merchant_account_id
$$;
comment on function private.merchant_credentials(uuid) is
'API credentials of a merchant account, decrypted from Vault (worker only).';
