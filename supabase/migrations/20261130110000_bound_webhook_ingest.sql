-- Issue 12, items 5, 6 and 12: what one callback URL can make the project store, and a
-- per-token rate limit that holds however many webhook processes or hosts share the database.
--
-- * Rate limit (item 12). The per-token token bucket moves from each webhook process into
--   Postgres, inside the one call the webhook already makes (private.ingest_webhook): one
--   database round trip per request, as before. The bucket of a token is split into n shards
--   (rows; n = rate/4, 1 to 16, at most the burst) of rate/n and burst/n each; a request takes
--   a token from the first shard that has one and is not locked by a concurrent request
--   (`for update skip locked`), so up to n requests of one token proceed at once instead of
--   queueing on one row lock until commit.
--   The shards together refill at the token's rate and hold at most its burst: the limit is
--   the same whether one process or many send. The table is unlogged (lost on a crash, which
--   only refills every bucket) and written in place (fillfactor 50, HOT updates).
-- * Rejected bodies (item 5). A rejected event keeps the first 2,048 characters of its raw
--   body, the body's length and sha256, and its payload only when that is at most 4 KB; at
--   most p_rejects_per_hour rejected events of a merchant account are stored per hour, the
--   rest are only counted (app.webhook_reject_counts). The same bad body again still counts
--   as a duplicate of the stored one.
-- * Ids (item 6). merchantId has at most 12 digits (MX merchant ids have 10; a card number
--   has 13 to 19) and a reject reason echoes it only then; the webhook masks every other
--   client value. A payment event's id stays 1 to 18 digits: it is MX's payment id (16
--   digits in MX's examples), which the worker fetches.
--
-- The signature gains the three limits (the webhook passes its settings), so the function
-- is dropped and created again with its comment and grant.

-- ---------------------------------------------------------------------------
-- Rejected bodies: length and hash of what was received, counters per hour
-- ---------------------------------------------------------------------------
alter table app.webhook_events
add column raw_body_bytes integer,
add column raw_body_sha256 text;
comment on column app.webhook_events.raw_body is
'Rejected events only: the first 2,048 characters of the raw body (card-like digit runs masked).';
comment on column app.webhook_events.raw_body_bytes is 'Rejected events only: length of the raw body received, bytes.';
comment on column app.webhook_events.raw_body_sha256 is 'Rejected events only: sha256 (hex) of the whole raw body.';

create table app.webhook_reject_counts (
    merchant_account_id uuid not null references app.merchant_accounts (id) on delete cascade,
    hour timestamptz not null,
    stored integer not null default 0,
    not_stored integer not null default 0,
    primary key (merchant_account_id, hour)
);
comment on table app.webhook_reject_counts is
'Rejected webhook requests per merchant account and hour: stored as events, and counted only (over the cap).';
alter table app.webhook_reject_counts enable row level security;

-- ---------------------------------------------------------------------------
-- Rate-limit buckets shared by every webhook process
-- ---------------------------------------------------------------------------
create unlogged table app.webhook_token_buckets (
    token_id uuid not null references app.webhook_tokens (id) on delete cascade,
    shard smallint not null,
    tokens double precision not null,
    updated_at timestamptz not null,
    primary key (token_id, shard)
) with (fillfactor = 50);
comment on table app.webhook_token_buckets is
'Per-token rate limit of the webhook: one token bucket split into shards (rows); unlogged (a crash refills them).';
alter table app.webhook_token_buckets enable row level security;

create function private.take_webhook_token(p_token_id uuid, p_rate double precision, p_burst integer)
returns double precision
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    -- shards only matter for concurrency, which only a high rate has: one shard per 4 requests
    -- a second, 1 to 16, never more than the burst (a shard holds at least one token)
    v_shards constant integer := greatest(1, least(16, p_burst, floor(p_rate / 4)::integer));
    v_rate constant double precision := p_rate / v_shards;
    v_cap constant double precision := greatest(p_burst, 1)::double precision / v_shards;
    v_shard smallint;
    v_wait double precision;
begin
    if p_rate <= 0 then
        return 0;
    end if;
    -- take a token from a shard that has one and that no concurrent request holds
    update app.webhook_token_buckets as b
    set tokens = least(v_cap, b.tokens + greatest(0, extract(epoch from now() - b.updated_at)) * v_rate) - 1,
        updated_at = greatest(b.updated_at, now())
    where b.token_id = p_token_id
        and b.shard = (
            select f.shard
            from app.webhook_token_buckets as f
            where f.token_id = p_token_id
                and f.shard < v_shards
                and least(v_cap, f.tokens + extract(epoch from now() - f.updated_at) * v_rate) >= 1
            order by f.shard
            limit 1
            for update skip locked
        )
    returning b.shard into v_shard;
    if v_shard is not null then
        return 0;
    end if;
    -- the token's first request (or more shards since its settings changed): full shards
    insert into app.webhook_token_buckets (token_id, shard, tokens, updated_at)
    select p_token_id, s.n, v_cap, now()
    from generate_series(0, v_shards - 1) as s (n)
    on conflict (token_id, shard) do nothing;
    -- then wait for a held shard that may still have a token once its holder commits
    select b.shard into v_shard
    from app.webhook_token_buckets as b
    where b.token_id = p_token_id
        and b.shard < v_shards
        and least(v_cap, b.tokens + extract(epoch from now() - b.updated_at) * v_rate) >= 1
    order by b.shard
    limit 1
    for update;
    if v_shard is not null then
        update app.webhook_token_buckets as b
        set tokens = least(v_cap, b.tokens + greatest(0, extract(epoch from now() - b.updated_at)) * v_rate) - 1,
            updated_at = greatest(b.updated_at, now())
        where b.token_id = p_token_id and b.shard = v_shard;
        return 0;
    end if;
    -- every shard is empty: the wait until the fullest one holds a token again
    select min((1 - least(v_cap, b.tokens + extract(epoch from now() - b.updated_at) * v_rate)) / v_rate)
    into v_wait
    from app.webhook_token_buckets as b
    where b.token_id = p_token_id and b.shard < v_shards;
    return greatest(coalesce(v_wait, 1 / p_rate), 0.001);
end
$$;
comment on function private.take_webhook_token(uuid, double precision, integer) is
'Webhook rate limit: take one token from the bucket of a callback token (p_rate a second, bursts of '
'p_burst; p_rate <= 0 disables); 0 when taken, else the seconds until one is available.';

-- ---------------------------------------------------------------------------
-- Storing a rejected event, bounded
-- ---------------------------------------------------------------------------
drop function private.record_rejected_event(app.merchant_accounts, text, jsonb, text, text);

create function private.record_rejected_event(
    p_account app.merchant_accounts,
    p_event_type text,
    p_payload jsonb,
    p_raw_body text,
    p_reason text,
    p_rejects_per_hour integer
)
returns bigint
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_body text := coalesce(p_raw_body, p_payload::text, '');
    v_sha256 text := encode(sha256(convert_to(v_body, 'UTF8')), 'hex');
    v_dedupe_key text := format('rejected:%s:%s', p_account.mx_merchant_id, v_sha256);
    v_hour timestamptz := date_trunc('hour', now());
    v_event_id bigint;
begin
    -- the same bad body again (MX retries what got no 2xx) is a duplicate of the stored one
    update app.webhook_events as e
    set duplicate_count = e.duplicate_count + 1,
        last_duplicate_at = now()
    where e.dedupe_key = v_dedupe_key
    returning e.id into v_event_id;
    if found then
        return v_event_id;
    end if;

    -- at most p_rejects_per_hour new rejected events of an account an hour; the rest are counted
    insert into app.webhook_reject_counts (merchant_account_id, hour)
    values (p_account.id, v_hour)
    on conflict (merchant_account_id, hour) do nothing;
    update app.webhook_reject_counts as c
    set stored = c.stored + 1
    where c.merchant_account_id = p_account.id
        and c.hour = v_hour
        and (p_rejects_per_hour <= 0 or c.stored < p_rejects_per_hour);
    if not found then
        update app.webhook_reject_counts as c
        set not_stored = c.not_stored + 1
        where c.merchant_account_id = p_account.id and c.hour = v_hour;
        return null;
    end if;

    insert into app.webhook_events (
        practice_id, merchant_account_id, mx_merchant_id, event_type, dedupe_key, status,
        reject_reason, payload, raw_body, raw_body_bytes, raw_body_sha256
    )
    values (
        p_account.practice_id, p_account.id, p_account.mx_merchant_id, left(p_event_type, 64), v_dedupe_key,
        'rejected', left(p_reason, 500),
        case when octet_length(p_payload::text) <= 4096 then p_payload end,
        left(coalesce(p_raw_body, case when octet_length(p_payload::text) > 4096 then p_payload::text end), 2048),
        octet_length(v_body), v_sha256
    )
    on conflict (dedupe_key) where dedupe_key is not null do update
    set duplicate_count = app.webhook_events.duplicate_count + 1,
        last_duplicate_at = now()
    returning id into v_event_id;
    return v_event_id;
end
$$;
comment on function private.record_rejected_event(app.merchant_accounts, text, jsonb, text, text, integer) is
'Store a rejected notification, bounded: reason, body length and sha256, the first 2,048 characters '
'of the body, the payload when at most 4 KB; the same body again counts as a duplicate; beyond '
'p_rejects_per_hour new rejects of an account an hour (<= 0: no cap) only counted; null when not stored.';

-- ---------------------------------------------------------------------------
-- The webhook's one call
-- ---------------------------------------------------------------------------
drop function private.ingest_webhook(text, jsonb, text, text);

-- Outcomes: unknown_token (nothing stored), rate_limited (nothing stored; retry_after_seconds
-- says when), merchant_mismatch and rejected (stored as rejected, or only counted beyond the
-- hourly cap: event_id null), duplicate, queued, ignored (stored, not a payment event).
create function private.ingest_webhook(
    p_token text,
    p_payload jsonb,
    p_raw_body text default null,
    p_problem text default null,
    p_rate_per_token double precision default 0,
    p_burst_per_token integer default 1,
    p_rejects_per_hour integer default 0
)
returns table (outcome text, event_id bigint, retry_after_seconds double precision)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_account app.merchant_accounts;
    v_token_id uuid;
    v_wait double precision;
    v_event_type text := nullif(p_payload ->> 'eventType', '');
    v_payment_id bigint;
    v_body_merchant text := nullif(p_payload ->> 'merchantId', '');
    v_dedupe_key text;
    v_inserted boolean;
begin
    select t.id into v_token_id
    from app.webhook_tokens as t
    where t.token_hash = private.hash_webhook_token(p_token)
        and t.retired_at is null;
    if found then
        select m.* into v_account
        from app.merchant_accounts as m
        inner join app.webhook_tokens as t on m.id = t.merchant_account_id
        where t.id = v_token_id and m.is_active;
    end if;
    if v_account.id is null then
        return query select 'unknown_token'::text, null::bigint, null::double precision;
        return;
    end if;

    v_wait := private.take_webhook_token(v_token_id, p_rate_per_token, p_burst_per_token);
    if v_wait > 0 then
        return query select 'rate_limited'::text, null::bigint, v_wait;
        return;
    end if;

    if p_problem is null and v_body_merchant is distinct from v_account.mx_merchant_id::text then
        return query select 'merchant_mismatch'::text, private.record_rejected_event(
            v_account, v_event_type, p_payload, p_raw_body,
            case
                when v_body_merchant ~ '^[0-9]{1,12}$'
                    then format('merchantId %s does not belong to this callback URL', v_body_merchant)
                when v_body_merchant is null then 'merchantId is missing'
                else 'merchantId is not an MX merchant id (1 to 12 digits)'
            end,
            p_rejects_per_hour
        ), null::double precision;
        return;
    end if;

    if p_problem is null and v_event_type is null then
        p_problem := 'eventType is missing';
    elsif p_problem is null and length(v_event_type) > 64 then
        p_problem := 'eventType is longer than 64 characters';
    end if;

    if p_problem is null and private.is_payment_event(v_event_type) then
        if coalesce(p_payload ->> 'id', '') !~ '^[0-9]{1,18}$' then
            p_problem := 'payment event without a numeric payment id in "id"';
        else
            v_payment_id := (p_payload ->> 'id')::bigint;
        end if;
    end if;

    if p_problem is not null then
        return query select 'rejected'::text, private.record_rejected_event(
            v_account, v_event_type, p_payload, p_raw_body, p_problem, p_rejects_per_hour
        ), null::double precision;
        return;
    end if;

    if private.is_payment_event(v_event_type) then
        v_dedupe_key := format('%s:%s:%s', v_account.mx_merchant_id, v_event_type, v_payment_id);
    else
        -- no payment id to key on: the same body twice is the same event
        v_dedupe_key := format(
            '%s:%s:%s', v_account.mx_merchant_id, coalesce(v_event_type, ''),
            encode(sha256(convert_to(p_payload::text, 'UTF8')), 'hex')
        );
    end if;

    insert into app.webhook_events (
        practice_id, merchant_account_id, mx_merchant_id, event_type, payment_id, dedupe_key,
        status, payload
    )
    values (
        v_account.practice_id, v_account.id, v_account.mx_merchant_id, v_event_type, v_payment_id,
        v_dedupe_key,
        case when private.is_payment_event(v_event_type) then 'queued' else 'ignored' end,
        p_payload
    )
    on conflict (dedupe_key) where dedupe_key is not null do update
    set duplicate_count = app.webhook_events.duplicate_count + 1,
        last_duplicate_at = now()
    returning id, (xmax = 0) into event_id, v_inserted;

    if not v_inserted then
        return query select 'duplicate'::text, event_id, null::double precision;
        return;
    end if;
    if not private.is_payment_event(v_event_type) then
        return query select 'ignored'::text, event_id, null::double precision;
        return;
    end if;

    update app.webhook_events
    set msg_id = private.queue_send('mx_ingest', jsonb_build_object('event_id', event_id))
    where id = event_id;
    return query select 'queued'::text, event_id, null::double precision;
end
$$;
comment on function private.ingest_webhook(text, jsonb, text, text, double precision, integer, integer) is
'Webhook entry point: authenticate the token, take a token from its shared rate-limit bucket, record '
'the event (deduplicated; rejects bounded) and queue it, atomically.';
grant execute on function private.ingest_webhook(text, jsonb, text, text, double precision, integer, integer)
to mx_webhook;
