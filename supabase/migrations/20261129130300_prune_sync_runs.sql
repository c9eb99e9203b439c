-- Retention for app.sync_runs: the scheduler reconciles every merchant every 15 minutes (500
-- practices: ~48,000 run rows a day), and nothing deleted them. private.prune_retention now
-- also deletes one batch of finished runs older than p_event_days (the same retention as
-- webhook events: callers keep their arguments) and returns it as a fourth column.
--
-- A finished run goes only when a newer run of its merchant account and kind exists
-- ("newer": started_at, then id, the order private.resumable_backfill uses), and, for a
-- succeeded run, only when a newer succeeded run exists whose watermark is at least its own.
-- So these always stay, however old:
--   * running runs (not finished);
--   * the newest run of each (account, kind): a failed backfill is resumed from the newest
--     backfill (private.resumable_backfill: its since and cursor), and deleting it would
--     make --resume continue an older run, or find none;
--   * the newest succeeded run of each (account, kind);
--   * the succeeded run holding the greatest watermark of each (account, kind) (the newest
--     of those): private.reconcile_watermark reads max(watermark) of the succeeded reconcile
--     runs, so pruning never moves it. (The worker never lets a watermark go backwards, so in
--     practice this is the newest succeeded run.)
-- A run another run was resumed from may go: resumed_from_id is `on delete set null`, and
-- resuming reads only the newest run.
--
-- Changing the OUT columns needs drop + create (create or replace cannot); the comment and
-- the grant are made again below.

-- Finished runs are pruned by age; index them so each batch finds its rows at once.
create index sync_runs_finished_idx on app.sync_runs (finished_at)
where status in ('succeeded', 'failed');

drop function private.prune_retention(integer, integer, integer, timestamptz);

create function private.prune_retention(
    p_event_days integer,
    p_archive_days integer,
    p_batch_size integer default 5000,
    p_as_of timestamptz default now()
)
returns table (webhook_events bigint, ingest_archive bigint, dlq_archive bigint, sync_runs bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_events bigint;
    v_runs bigint;
begin
    if p_event_days < 1 or p_archive_days < 1 or p_batch_size < 1 then
        raise exception 'retention days and batch size must be at least 1' using errcode = '22023';
    end if;
    -- finished events only: queued, retrying and dead ones stay until worked or redriven.
    -- A pruned event's dedupe key goes with it; a duplicate arriving later is processed
    -- again, which converges to the same state.
    delete from app.webhook_events as e
    where e.id in (
        select f.id from app.webhook_events as f
        where f.status in ('processed', 'ignored', 'rejected')
            and f.received_at < p_as_of - make_interval(days => p_event_days)
        order by f.received_at
        limit p_batch_size
        for update skip locked
    );
    get diagnostics v_events = row_count;
    -- finished runs superseded by a newer run of their account and kind (see the header):
    -- the newest run, the newest succeeded one and the one with the greatest watermark stay.
    delete from app.sync_runs as r
    where r.id in (
        select f.id from app.sync_runs as f
        where f.status in ('succeeded', 'failed')
            and f.finished_at < p_as_of - make_interval(days => p_event_days)
            and exists (
                select from app.sync_runs as n
                where n.merchant_account_id = f.merchant_account_id
                    and n.kind = f.kind
                    and n.started_at >= f.started_at
                    and (n.started_at > f.started_at or n.id > f.id)
                    and (
                        f.status = 'failed'
                        or (n.status = 'succeeded' and (f.watermark is null or n.watermark >= f.watermark))
                    )
            )
        order by f.finished_at
        limit p_batch_size
        for update skip locked
    );
    get diagnostics v_runs = row_count;
    return query select
        v_events,
        private.queue_prune_archive('mx_ingest', p_as_of - make_interval(days => p_archive_days), p_batch_size),
        private.queue_prune_archive('mx_ingest_dlq', p_as_of - make_interval(days => p_archive_days), p_batch_size),
        v_runs;
end
$$;
comment on function private.prune_retention(integer, integer, integer, timestamptz) is
'Delete one batch (at most p_batch_size rows each) of finished webhook events and of finished '
'sync runs older than p_event_days (never the newest run, the newest succeeded run or the '
'greatest-watermark run of a merchant account and kind) and of mx_ingest / mx_ingest_dlq '
'archive rows older than p_archive_days; call again, one transaction per call, until it '
'returns zeros.';

grant execute on function private.prune_retention(integer, integer, integer, timestamptz) to mx_worker;
