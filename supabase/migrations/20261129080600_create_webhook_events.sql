-- The raw log of MX Merchant notifications and the procedure the webhook calls.

create table app.webhook_events (
    id bigint generated always as identity primary key,
    received_at timestamptz not null default now(),
    practice_id uuid references app.practices (id) on delete cascade,
    merchant_account_id uuid references app.merchant_accounts (id) on delete cascade,
    mx_merchant_id bigint,
    event_type text,
    payment_id bigint,
    -- (merchant, event type, payment id) for payment events: MX sends no event id
    dedupe_key text,
    origin text not null default 'webhook' check (origin in ('webhook', 'reconcile', 'backfill', 'replay')),
    status text not null check (status in ('queued', 'retrying', 'processed', 'ignored', 'rejected', 'dead')),
    reject_reason text,
    payload jsonb,
    raw_body text,
    msg_id bigint,
    attempts integer not null default 0,
    last_error text,
    processed_at timestamptz,
    duplicate_count integer not null default 0,
    last_duplicate_at timestamptz
);
create unique index webhook_events_dedupe_key_idx on app.webhook_events (dedupe_key)
where dedupe_key is not null;
create index webhook_events_practice_received_idx on app.webhook_events (practice_id, received_at desc);
create index webhook_events_unfinished_idx on app.webhook_events (status, received_at)
where status in ('queued', 'retrying', 'dead');
comment on table app.webhook_events is
'Every notification received (or queued by reconciliation), its dedupe key, status and attempts.';

alter table app.webhook_events enable row level security;
-- Read by owners and admins through the event explorer (added with the operations work);
-- no client grant here.

create function private.is_payment_event(event_type text)
returns boolean
language sql
immutable
set search_path = ''
as $$
    select event_type in ('PaymentSuccess', 'PaymentFail', 'RefundCreated')
$$;
comment on function private.is_payment_event(text) is
'Event types that name a payment to fetch; everything else is stored and marked ignored.';

-- A rejected notification is kept with its reason and raw body. MX retries what it did not
-- get a 2xx for, so the same bad body again only counts as a duplicate of the first.
create function private.record_rejected_event(
    p_account app.merchant_accounts, p_event_type text, p_payload jsonb, p_raw_body text, p_reason text
)
returns bigint
language sql
security definer
set search_path = ''
as $$
    insert into app.webhook_events (
        practice_id, merchant_account_id, mx_merchant_id, event_type, dedupe_key, status,
        reject_reason, payload, raw_body
    )
    values (
        p_account.practice_id, p_account.id, p_account.mx_merchant_id, p_event_type,
        format(
            'rejected:%s:%s', p_account.mx_merchant_id,
            encode(pg_catalog.sha256(convert_to(coalesce(p_raw_body, p_payload::text, ''), 'UTF8')), 'hex')
        ),
        'rejected', p_reason, p_payload, p_raw_body
    )
    on conflict (dedupe_key) where dedupe_key is not null do update
    set duplicate_count = app.webhook_events.duplicate_count + 1,
        last_duplicate_at = now()
    returning id
$$;
comment on function private.record_rejected_event(app.merchant_accounts, text, jsonb, text, text) is
'Store a rejected notification with its reason; the same body again is counted as a duplicate.';

-- The webhook's one call per request. Authenticates the token, then in this one
-- transaction records the event (deduplicated) and queues it.
-- Outcomes: unknown_token (nothing stored), merchant_mismatch and rejected (stored as
-- rejected), duplicate, queued, ignored (stored, not a payment event).
create function private.ingest_webhook(
    p_token text,
    p_payload jsonb,
    p_raw_body text default null,
    p_problem text default null
)
returns table (outcome text, event_id bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_account app.merchant_accounts;
    v_event_type text := nullif(p_payload ->> 'eventType', '');
    v_payment_id bigint;
    v_body_merchant text := nullif(p_payload ->> 'merchantId', '');
    v_dedupe_key text;
    v_inserted boolean;
begin
    select m.* into v_account
    from app.webhook_tokens as t
    inner join app.merchant_accounts as m on m.id = t.merchant_account_id
    where t.token_hash = private.hash_webhook_token(p_token)
        and t.retired_at is null
        and m.is_active;
    if not found then
        return query select 'unknown_token'::text, null::bigint;
        return;
    end if;

    if p_problem is null and v_body_merchant is distinct from v_account.mx_merchant_id::text then
        return query select 'merchant_mismatch'::text, private.record_rejected_event(
            v_account, v_event_type, p_payload, p_raw_body,
            format('merchantId %s does not belong to this callback URL', left(coalesce(v_body_merchant, '(none)'), 32))
        );
        return;
    end if;

    if p_problem is null and v_event_type is null then
        p_problem := 'eventType is missing';
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
            v_account, v_event_type, p_payload, p_raw_body, p_problem
        );
        return;
    end if;

    if private.is_payment_event(v_event_type) then
        v_dedupe_key := format('%s:%s:%s', v_account.mx_merchant_id, v_event_type, v_payment_id);
    else
        -- no payment id to key on: the same body twice is the same event
        v_dedupe_key := format(
            '%s:%s:%s', v_account.mx_merchant_id, coalesce(v_event_type, ''),
            encode(pg_catalog.sha256(convert_to(p_payload::text, 'UTF8')), 'hex')
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
        return query select 'duplicate'::text, event_id;
        return;
    end if;
    if not private.is_payment_event(v_event_type) then
        return query select 'ignored'::text, event_id;
        return;
    end if;

    update app.webhook_events
    set msg_id = private.queue_send('mx_ingest', jsonb_build_object('event_id', event_id))
    where id = event_id;
    return query select 'queued'::text, event_id;
end
$$;
comment on function private.ingest_webhook(text, jsonb, text, text) is
'Webhook entry point: authenticate the token, record the event (deduplicated) and queue it, atomically.';
