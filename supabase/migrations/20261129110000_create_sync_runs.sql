-- Synchronisation runs against the MX Merchant list APIs (docs/sync.md):
--   reconcile  pages GET /payment from the newest back to the merchant's watermark (minus an
--              overlap) and queues the payments the project has not processed;
--   backfill   the same since a given date, resumable (cursor = offset in the run row);
--   contracts  refreshes every recurring contract and applies it to its memberships.
-- A run row is committed as 'running' before any MX call and finished in a separate
-- transaction, so a run that fails is recorded as failed, never as a success. The
-- reconcile watermark is the newest payment time seen by a succeeded run: it only advances
-- on success.

create table app.sync_runs (
    id bigint generated always as identity primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    merchant_account_id uuid not null references app.merchant_accounts (id) on delete cascade,
    kind text not null check (kind in ('reconcile', 'backfill', 'contracts')),
    status text not null default 'running' check (status in ('running', 'succeeded', 'failed')),
    run_by text not null default 'operator' check (run_by in ('operator', 'scheduler')),
    started_at timestamptz not null default now(),
    heartbeat_at timestamptz not null default now(),
    finished_at timestamptz,
    -- lower bound of the payments looked at (reconcile: watermark - overlap; backfill: --since)
    since timestamptz,
    -- reconcile: newest payment time seen; set on success only
    watermark timestamptz,
    -- where to continue: {"phase": "payments"|"contracts", "offset": n, "last_seen_id": id}
    cursor jsonb not null default '{}',
    resumed_from_id bigint references app.sync_runs (id) on delete set null,
    pages integer not null default 0,
    found integer not null default 0,
    queued integer not null default 0,
    error text,
    check ((status = 'running') = (finished_at is null))
);
create index sync_runs_practice_started_idx on app.sync_runs (practice_id, started_at desc);
create index sync_runs_account_kind_started_idx on app.sync_runs (merchant_account_id, kind, started_at desc);
create index sync_runs_resumed_from_id_idx on app.sync_runs (resumed_from_id) where resumed_from_id is not null;
-- at most one run of a kind per merchant at a time
create unique index sync_runs_one_running_idx on app.sync_runs (merchant_account_id, kind)
where status = 'running';
comment on table app.sync_runs is
'Reconcile, backfill and contract-sync runs per merchant account: outcome, counts, cursor, watermark.';

alter table app.sync_runs enable row level security;

grant select on app.sync_runs to authenticated;

create policy sync_runs_select on app.sync_runs
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

-- Owners and admins see the runs of their practices (the operations screen).
create view api.sync_runs with (security_invoker = true) as
select
    r.id,
    r.practice_id,
    r.merchant_account_id,
    m.mx_merchant_id,
    r.kind,
    r.status,
    r.run_by,
    r.started_at,
    r.finished_at,
    r.since,
    r.watermark,
    r.pages,
    r.found,
    r.queued,
    r.error
from app.sync_runs as r
inner join app.merchant_accounts as m on r.merchant_account_id = m.id
where r.practice_id = any((select private.current_admin_practice_ids())::uuid[]);
comment on view api.sync_runs is 'Synchronisation runs of the practices the requesting user administers.';
grant select on api.sync_runs to authenticated;

-- Unfinished events of a payment are looked up by payment id when a sync decides what to queue.
create index webhook_events_payment_unfinished_idx on app.webhook_events (payment_id)
where status in ('queued', 'retrying');

-- ---------------------------------------------------------------------------
-- Accounts to sync
-- ---------------------------------------------------------------------------
create function private.sync_accounts(p_mx_merchant_id bigint default null)
returns table (merchant_account_id uuid, mx_merchant_id bigint, practice_id uuid)
language sql
stable
security definer
set search_path = ''
as $$
    select m.id, m.mx_merchant_id, m.practice_id
    from app.merchant_accounts as m
    where m.is_active
        and m.credentials_secret_id is not null
        and (p_mx_merchant_id is null or m.mx_merchant_id = p_mx_merchant_id)
    order by m.mx_merchant_id
$$;
comment on function private.sync_accounts(bigint) is
'Active merchant accounts with API credentials (one when p_mx_merchant_id is given).';

create function private.sync_due_accounts(p_kind text, p_every interval)
returns table (merchant_account_id uuid, mx_merchant_id bigint)
language sql
stable
security definer
set search_path = ''
as $$
    select a.merchant_account_id, a.mx_merchant_id
    from private.sync_accounts() as a
    inner join app.merchant_accounts as m on a.merchant_account_id = m.id
    where m.credentials_failed_at is null
        and not exists (
            select from app.sync_runs as r
            where r.merchant_account_id = a.merchant_account_id
                and r.kind = p_kind
                and (r.status = 'running' or r.started_at > now() - p_every)
        )
    order by a.mx_merchant_id
$$;
comment on function private.sync_due_accounts(text, interval) is
'Scheduler: accounts with no run of p_kind started within p_every and none running. Decided from '
'the run rows, so a scheduler that takes over from another does not repeat its work.';

-- ---------------------------------------------------------------------------
-- Run rows
-- ---------------------------------------------------------------------------
create function private.start_sync_run(
    p_merchant_account_id uuid,
    p_kind text,
    p_run_by text default 'operator',
    p_since timestamptz default null,
    p_cursor jsonb default '{}',
    p_resumed_from_id bigint default null,
    p_stale_after interval default '15 minutes'
)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_practice_id uuid;
    v_id bigint;
begin
    select m.practice_id into v_practice_id from app.merchant_accounts as m where m.id = p_merchant_account_id;
    if not found then
        raise exception 'unknown merchant account %', p_merchant_account_id using errcode = '22023';
    end if;
    -- a run whose process died keeps no heartbeat: it is recorded as failed, never left running
    update app.sync_runs
    set status = 'failed', finished_at = now(), error = 'abandoned: no heartbeat since ' || heartbeat_at
    where merchant_account_id = p_merchant_account_id
        and kind = p_kind
        and status = 'running'
        and heartbeat_at < now() - p_stale_after;
    begin
        insert into app.sync_runs (
            practice_id, merchant_account_id, kind, run_by, since, cursor, resumed_from_id
        )
        values (
            v_practice_id, p_merchant_account_id, p_kind, p_run_by, p_since, coalesce(p_cursor, '{}'),
            p_resumed_from_id
        )
        returning id into v_id;
    exception when unique_violation then
        raise exception 'a % run of this merchant account is already running', p_kind
        using errcode = '55P03';
    end;
    return v_id;
end
$$;
comment on function private.start_sync_run(uuid, text, text, timestamptz, jsonb, bigint, interval) is
'Record a run as running (commit it before calling MX); fails with 55P03 when one is already '
'running; runs without a heartbeat for p_stale_after are first recorded as failed.';

create function private.record_sync_progress(
    p_run_id bigint, p_pages integer, p_found integer, p_queued integer, p_cursor jsonb
)
returns void
language sql
security definer
set search_path = ''
as $$
    update app.sync_runs
    set pages = p_pages, found = p_found, queued = p_queued, cursor = coalesce(p_cursor, cursor),
        heartbeat_at = now()
    where id = p_run_id and status = 'running'
$$;
comment on function private.record_sync_progress(bigint, integer, integer, integer, jsonb) is
'Save a running run''s counts and cursor (the resume point) and its heartbeat.';

create function private.finish_sync_run(
    p_run_id bigint,
    p_succeeded boolean,
    p_error text,
    p_pages integer,
    p_found integer,
    p_queued integer,
    p_cursor jsonb default null,
    p_watermark timestamptz default null
)
returns text
language sql
security definer
set search_path = ''
as $$
    update app.sync_runs
    set status = case when p_succeeded then 'succeeded' else 'failed' end,
        finished_at = now(),
        heartbeat_at = now(),
        error = case when p_succeeded then null else left(coalesce(p_error, 'failed'), 2000) end,
        pages = p_pages,
        found = p_found,
        queued = p_queued,
        cursor = coalesce(p_cursor, cursor),
        -- the watermark only ever comes from a success
        watermark = case when p_succeeded then p_watermark end
    where id = p_run_id and status = 'running'
    returning status
$$;
comment on function private.finish_sync_run(bigint, boolean, text, integer, integer, integer, jsonb, timestamptz) is
'Record the outcome of a run (separate transaction from its start); a watermark only on success.';

create function private.reconcile_watermark(p_merchant_account_id uuid)
returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
    select max(r.watermark)
    from app.sync_runs as r
    where r.merchant_account_id = p_merchant_account_id
        and r.kind = 'reconcile'
        and r.status = 'succeeded'
$$;
comment on function private.reconcile_watermark(uuid) is
'Newest payment time a succeeded reconcile saw for the account (null before the first success).';

create function private.resumable_backfill(p_merchant_account_id uuid)
returns table (run_id bigint, since timestamptz, cursor jsonb, status text)
language sql
stable
security definer
set search_path = ''
as $$
    select r.id, r.since, r.cursor, r.status
    from app.sync_runs as r
    where r.merchant_account_id = p_merchant_account_id and r.kind = 'backfill'
    order by r.started_at desc, r.id desc
    limit 1
$$;
comment on function private.resumable_backfill(uuid) is
'The newest backfill of the account (the caller resumes it when it did not succeed).';

-- ---------------------------------------------------------------------------
-- Queue what the project has not processed
-- ---------------------------------------------------------------------------
-- p_payments: canonical list records (worker/mx/models.py canonical(): id, merchant_id,
-- status, refunded_amount, created). A payment is queued when it is not stored, or its
-- status or refunded amount differs from the stored one, and no event of it is unfinished.
-- The dedupe key (merchant:reconcile:payment:status:refunded) differs from the webhook's
-- (merchant:EventType:payment): a second sync does not queue the same gap twice, and a later
-- change of status or refund makes a new key.
create function private.queue_sync_payments(p_run_id bigint, p_payments jsonb)
returns table (found integer, queued integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs;
    v_account app.merchant_accounts;
    v_found integer := 0;
    v_queued integer := 0;
    v_rec record;
    v_event_id bigint;
begin
    select * into v_run from app.sync_runs where id = p_run_id;
    if not found then
        raise exception 'unknown sync run %', p_run_id using errcode = '22023';
    end if;
    select * into v_account from app.merchant_accounts where id = v_run.merchant_account_id;

    for v_rec in
        select
            (r.value ->> 'id')::bigint as payment_id,
            coalesce(r.value ->> 'status', '') as status,
            coalesce(private.money(r.value, 'refunded_amount'), 0) as refunded,
            r.value ->> 'created' as created
        from jsonb_array_elements(coalesce(p_payments, '[]')) as r (value)
        left join app.payments as p on p.id = (r.value ->> 'id')::bigint
        where (r.value ->> 'id') ~ '^[0-9]{1,18}$'
            and coalesce((r.value ->> 'merchant_id')::bigint, v_account.mx_merchant_id) = v_account.mx_merchant_id
            and (
                p.id is null
                or p.status is distinct from coalesce(r.value ->> 'status', '')
                or coalesce(p.refunded_amount, 0) <> coalesce(private.money(r.value, 'refunded_amount'), 0)
            )
            and not exists (
                select from app.webhook_events as e
                where e.payment_id = (r.value ->> 'id')::bigint
                    and e.status in ('queued', 'retrying')
                    and e.merchant_account_id = v_account.id
            )
    loop
        v_found := v_found + 1;
        insert into app.webhook_events (
            practice_id, merchant_account_id, mx_merchant_id, event_type, payment_id, dedupe_key,
            origin, status, payload
        )
        values (
            v_account.practice_id, v_account.id, v_account.mx_merchant_id, 'Reconcile', v_rec.payment_id,
            format(
                '%s:reconcile:%s:%s:%s', v_account.mx_merchant_id, v_rec.payment_id, v_rec.status, v_rec.refunded
            ),
            case when v_run.kind = 'backfill' then 'backfill' else 'reconcile' end,
            'queued',
            jsonb_build_object(
                'sync_run_id', v_run.id, 'kind', v_run.kind, 'id', v_rec.payment_id::text,
                'status', v_rec.status, 'refunded_amount', v_rec.refunded::text, 'created', v_rec.created
            )
        )
        on conflict (dedupe_key) where dedupe_key is not null do nothing
        returning id into v_event_id;
        if v_event_id is not null then
            update app.webhook_events
            set msg_id = private.queue_send('mx_ingest', jsonb_build_object('event_id', v_event_id))
            where id = v_event_id;
            v_queued := v_queued + 1;
        end if;
        v_event_id := null;
    end loop;
    return query select v_found, v_queued;
end
$$;
comment on function private.queue_sync_payments(bigint, jsonb) is
'Sync: record (origin reconcile/backfill, event type Reconcile, own dedupe key) and queue on '
'mx_ingest every listed payment not stored or stored with another status or refunded amount; '
'returns how many differed (found) and how many were newly queued.';

-- ---------------------------------------------------------------------------
-- Privileges: the worker (its scheduler) and operators (owner) run syncs.
-- ---------------------------------------------------------------------------
grant execute on function private.sync_accounts(bigint) to mx_worker;
grant execute on function private.sync_due_accounts(text, interval) to mx_worker;
grant execute on function private.start_sync_run(uuid, text, text, timestamptz, jsonb, bigint, interval)
to mx_worker;
grant execute on function private.record_sync_progress(bigint, integer, integer, integer, jsonb) to mx_worker;
grant execute on function private.finish_sync_run(bigint, boolean, text, integer, integer, integer, jsonb, timestamptz)
to mx_worker;
grant execute on function private.reconcile_watermark(uuid) to mx_worker;
grant execute on function private.resumable_backfill(uuid) to mx_worker;
grant execute on function private.queue_sync_payments(bigint, jsonb) to mx_worker;
