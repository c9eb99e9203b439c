-- "Sync now" from the dashboard (issue 11, item 6): an owner or admin asks for a reconcile of
-- the practice's merchant accounts; the request is a row here, and the worker's scheduler
-- (every worker, claiming with skip locked) carries it out as an ordinary reconcile run. The
-- dashboard never calls MX. One open (pending or running) request per merchant account: a
-- second click while one is open is refused with a clear message, which is also the rate
-- limit. A request claimed by a worker that died is claimed again after a timeout (unless its
-- run still has a fresh heartbeat), at most p_max_attempts times, then recorded as failed.

-- runs carried out for a request say so (operator, scheduler, request)
alter table app.sync_runs drop constraint sync_runs_run_by_check;
alter table app.sync_runs add constraint sync_runs_run_by_check check (
    run_by in ('operator', 'scheduler', 'request')
);

create table app.sync_requests (
    id bigint generated always as identity primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    merchant_account_id uuid not null references app.merchant_accounts (id) on delete cascade,
    requested_by uuid references auth.users (id) on delete set null,
    requested_at timestamptz not null default now(),
    status text not null default 'pending',
    -- a pending request is not claimed before this (set when a worker hands it back)
    available_at timestamptz not null default now(),
    claimed_at timestamptz,
    claimed_by text,
    attempts integer not null default 0,
    sync_run_id bigint references app.sync_runs (id) on delete set null,
    finished_at timestamptz,
    error text,
    constraint sync_requests_status_check check (status in ('pending', 'running', 'done', 'failed')),
    constraint sync_requests_finished_check check ((status in ('done', 'failed')) = (finished_at is not null))
);
comment on table app.sync_requests is
'Reconciles asked for from the dashboard ("sync now"), one per merchant account, carried out by the worker''s scheduler.';
comment on column app.sync_requests.sync_run_id is
'The reconcile run that carries the request out (its progress and counts); null until it starts.';

-- the dedupe: at most one open request per merchant account
create unique index sync_requests_one_open_idx on app.sync_requests (merchant_account_id)
where status in ('pending', 'running');
create index sync_requests_pending_idx on app.sync_requests (available_at) where status = 'pending';
create index sync_requests_running_idx on app.sync_requests (claimed_at) where status = 'running';
create index sync_requests_practice_requested_idx on app.sync_requests (practice_id, requested_at desc);
create index sync_requests_sync_run_id_idx on app.sync_requests (sync_run_id) where sync_run_id is not null;
create index sync_requests_requested_by_idx on app.sync_requests (requested_by) where requested_by is not null;
create index sync_requests_finished_idx on app.sync_requests (finished_at) where status in ('done', 'failed');

alter table app.sync_requests enable row level security;

-- read by the practice's owners and admins (like its sync runs); written only by the
-- security definer functions below
create policy sync_requests_select on app.sync_requests
for select to authenticated
using (practice_id in (select unnest(private.current_admin_practice_ids())));
grant select on app.sync_requests to authenticated;

create view api.sync_requests with (security_invoker = true) as
select
    q.id,
    q.practice_id,
    q.merchant_account_id,
    m.mx_merchant_id,
    q.requested_by,
    q.requested_at,
    q.status,
    q.attempts,
    q.claimed_at,
    q.finished_at,
    q.error,
    q.sync_run_id,
    r.status as run_status,
    r.started_at as run_started_at,
    r.finished_at as run_finished_at,
    r.pages as run_pages,
    r.found as run_found,
    r.queued as run_queued,
    r.error as run_error
from app.sync_requests as q
inner join app.merchant_accounts as m on q.merchant_account_id = m.id
left join app.sync_runs as r on q.sync_run_id = r.id;
comment on view api.sync_requests is
'Owners/admins: the practice''s "sync now" requests, their status and the reconcile run that carried them out.';
grant select on api.sync_requests to authenticated;

-- ---------------------------------------------------------------------------
-- asking (owners and admins of the practice)
-- ---------------------------------------------------------------------------
create function private.request_sync(p_practice_id uuid)
returns table (request_id bigint, mx_merchant_id bigint, created boolean)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user_id uuid := auth.uid();
    v_account record;
    v_id bigint;
    v_any boolean := false;
    v_created boolean := false;
begin
    -- authorisation first
    if v_user_id is null then
        raise exception 'not signed in' using errcode = '42501';
    end if;
    if p_practice_id is null then
        raise exception 'a practice is required' using errcode = '22023';
    end if;
    if not p_practice_id = any(private.current_admin_practice_ids()) then
        if p_practice_id = any(private.current_practice_ids()) then
            raise exception 'only owners and admins of the practice may ask for a sync'
            using errcode = '42501';
        end if;
        raise exception 'practice % not found', p_practice_id using errcode = 'P0002';
    end if;
    for v_account in
        select a.merchant_account_id, a.mx_merchant_id
        from private.sync_accounts() as a
        where a.practice_id = p_practice_id
    loop
        v_any := true;
        insert into app.sync_requests (practice_id, merchant_account_id, requested_by)
        values (p_practice_id, v_account.merchant_account_id, v_user_id)
        on conflict (merchant_account_id) where status in ('pending', 'running') do nothing
        returning id into v_id;
        if v_id is not null then
            v_created := true;
            request_id := v_id;
            created := true;
        else
            select q.id into request_id
            from app.sync_requests as q
            where q.merchant_account_id = v_account.merchant_account_id
                and q.status in ('pending', 'running');
            created := false;
        end if;
        mx_merchant_id := v_account.mx_merchant_id;
        return next;
    end loop;
    if not v_any then
        raise exception 'this practice has no active merchant account with API credentials to sync'
        using errcode = '22023';
    end if;
    if not v_created then
        raise exception 'a sync of this practice is already pending: wait for it to finish'
        using errcode = '23505';
    end if;
end
$$;
comment on function private.request_sync(uuid) is
'Owners/admins of the practice (checked here): one pending reconcile request per active merchant account with credentials; refused when every account already has an open one.';
revoke all on function private.request_sync(uuid) from public;
grant execute on function private.request_sync(uuid) to authenticated;

create function api.request_sync(p_practice_id uuid)
returns table (request_id bigint, mx_merchant_id bigint, created boolean)
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select r.request_id, r.mx_merchant_id, r.created from private.request_sync(p_practice_id) as r
$$;
comment on function api.request_sync(uuid) is
'Owners/admins: ask the worker for a reconcile of the practice''s merchant accounts ("sync now"); one open request per account.';
revoke all on function api.request_sync(uuid) from public;
grant execute on function api.request_sync(uuid) to authenticated;

-- ---------------------------------------------------------------------------
-- carrying out (the worker)
-- ---------------------------------------------------------------------------
create function private.claim_sync_request(
    p_worker text,
    p_reclaim_after interval default interval '15 minutes',
    p_max_attempts integer default 3
)
returns table (request_id bigint, merchant_account_id uuid, mx_merchant_id bigint, attempts integer)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    -- a request whose worker died (no claim or run heartbeat within p_reclaim_after) and that
    -- has had its attempts is recorded as failed, never left running
    update app.sync_requests as q
    set status = 'failed',
        finished_at = now(),
        error = 'abandoned: the worker stopped while carrying it out (' || q.attempts || ' attempts)'
    where q.status = 'running'
        and q.attempts >= p_max_attempts
        and q.claimed_at < now() - p_reclaim_after
        and not exists (
            select from app.sync_runs as r
            where r.id = q.sync_run_id and r.status = 'running' and r.heartbeat_at >= now() - p_reclaim_after
        );
    return query
    with next as (
        select q.id
        from app.sync_requests as q
        where (q.status = 'pending' and q.available_at <= now())
            or (
                q.status = 'running'
                and q.claimed_at < now() - p_reclaim_after
                and not exists (
                    select from app.sync_runs as r
                    where r.id = q.sync_run_id
                        and r.status = 'running'
                        and r.heartbeat_at >= now() - p_reclaim_after
                )
            )
        order by q.requested_at, q.id
        limit 1
        for update skip locked
    )

    update app.sync_requests as q
    set status = 'running',
        claimed_at = now(),
        claimed_by = left(p_worker, 200),
        attempts = q.attempts + 1,
        sync_run_id = null
    from next, app.merchant_accounts as m
    where q.id = next.id and m.id = q.merchant_account_id
    returning q.id, q.merchant_account_id, m.mx_merchant_id, q.attempts;
end
$$;
comment on function private.claim_sync_request(text, interval, integer) is
'Worker: claim the oldest pending sync request (skip locked, so several workers never take the same one), or one whose worker died; gives up after p_max_attempts.';
revoke all on function private.claim_sync_request(text, interval, integer) from public;
grant execute on function private.claim_sync_request(text, interval, integer) to mx_worker;

create function private.attach_sync_run(p_request_id bigint, p_run_id bigint)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    update app.sync_requests
    set sync_run_id = p_run_id, claimed_at = now()
    where id = p_request_id and status = 'running'
$$;
comment on function private.attach_sync_run(bigint, bigint) is
'Worker: the reconcile run that carries out a claimed request (the page shows its progress).';
revoke all on function private.attach_sync_run(bigint, bigint) from public;
grant execute on function private.attach_sync_run(bigint, bigint) to mx_worker;

create function private.finish_sync_request(p_request_id bigint, p_succeeded boolean, p_error text)
returns text
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    update app.sync_requests
    set status = case when p_succeeded then 'done' else 'failed' end,
        finished_at = now(),
        error = case when p_succeeded then null else left(coalesce(p_error, 'failed'), 2000) end
    where id = p_request_id and status = 'running'
    returning status
$$;
comment on function private.finish_sync_request(bigint, boolean, text) is
'Worker: record the outcome of a claimed request (done, or failed with the reason).';
revoke all on function private.finish_sync_request(bigint, boolean, text) from public;
grant execute on function private.finish_sync_request(bigint, boolean, text) to mx_worker;

create function private.release_sync_request(p_request_id bigint, p_retry_after interval)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    update app.sync_requests
    set status = 'pending',
        available_at = now() + greatest(p_retry_after, interval '0 seconds'),
        claimed_at = null,
        claimed_by = null,
        attempts = greatest(attempts - 1, 0),
        sync_run_id = null
    where id = p_request_id and status = 'running'
$$;
comment on function private.release_sync_request(bigint, interval) is
'Worker: hand a claimed request back (a reconcile of the account is already running, or the worker is stopping); not counted as an attempt.';
revoke all on function private.release_sync_request(bigint, interval) from public;
grant execute on function private.release_sync_request(bigint, interval) to mx_worker;

-- ---------------------------------------------------------------------------
-- retention (the scheduler, with the other pruning)
-- ---------------------------------------------------------------------------
create function private.prune_sync_requests(p_days integer, p_batch_size integer)
returns integer
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    with gone as (
        delete from app.sync_requests
        where id in (
            select q.id
            from app.sync_requests as q
            where q.status in ('done', 'failed')
                and q.finished_at < now() - pg_catalog.make_interval(days => p_days)
            order by q.finished_at
            limit p_batch_size
        )
        returning 1
    )

    select count(*)::integer from gone
$$;
comment on function private.prune_sync_requests(integer, integer) is
'Worker: delete at most p_batch_size finished sync requests older than p_days (open ones are never pruned).';
revoke all on function private.prune_sync_requests(integer, integer) from public;
grant execute on function private.prune_sync_requests(integer, integer) to mx_worker;
