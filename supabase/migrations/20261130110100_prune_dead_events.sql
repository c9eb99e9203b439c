-- Issue 12, item 5: dead events were never pruned. private.prune_retention now also deletes
-- dead webhook events older than p_event_days (by received_at, as the other finished events):
-- a dead event's dead letter stays in mx_ingest_dlq and carries what a replay needs (event id,
-- reason, attempts, merchant and payment id; the worker fetches the payment itself from MX), so
-- `backfill --since` of that day queues a pruned dead event's payment again. It also deletes
-- the webhook's idle rate-limit buckets (untouched for a day: a full bucket is the same as none)
-- and the hourly reject counters older than p_event_days.
--
-- Unchanged: the signature and OUT columns (the worker's scheduler and pg_cron call it as
-- before; dead events count in webhook_events), and the sync_runs rules of
-- 20261129130300_prune_sync_runs.sql, copied as they are.

-- Dead events are pruned by age too: the partial index of finished events grows to cover them.
drop index app.webhook_events_finished_received_idx;
create index webhook_events_finished_received_idx on app.webhook_events (received_at)
where status in ('processed', 'ignored', 'rejected', 'dead');

create or replace function private.prune_retention(
    p_event_days integer,
    p_archive_days integer,
    p_batch_size integer default 5000,
    p_as_of timestamptz default now()
)
returns table (webhook_events bigint, ingest_archive bigint, dlq_archive bigint, sync_runs bigint)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_events bigint;
    v_runs bigint;
begin
    if p_event_days < 1 or p_archive_days < 1 or p_batch_size < 1 then
        raise exception 'retention days and batch size must be at least 1' using errcode = '22023';
    end if;
    -- finished and dead events: queued and retrying ones stay until worked. A pruned event's
    -- dedupe key goes with it; a duplicate arriving later is processed again, which converges
    -- to the same state. A dead event's dead letter (mx_ingest_dlq) stays.
    delete from app.webhook_events as e
    where e.id in (
        select f.id from app.webhook_events as f
        where f.status in ('processed', 'ignored', 'rejected', 'dead')
            and f.received_at < p_as_of - make_interval(days => p_event_days)
        order by f.received_at
        limit p_batch_size
        for update skip locked
    );
    get diagnostics v_events = row_count;
    -- finished runs superseded by a newer run of their account and kind (see
    -- 20261129130300_prune_sync_runs.sql): the newest run, the newest succeeded one and the one
    -- with the greatest watermark stay.
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
    -- the webhook's bookkeeping: idle rate-limit buckets, old reject counters
    delete from app.webhook_token_buckets as b
    where b.updated_at < p_as_of - interval '1 day';
    delete from app.webhook_reject_counts as c
    where c.hour < p_as_of - make_interval(days => p_event_days);
    return query select
        v_events,
        private.queue_prune_archive('mx_ingest', p_as_of - make_interval(days => p_archive_days), p_batch_size),
        private.queue_prune_archive('mx_ingest_dlq', p_as_of - make_interval(days => p_archive_days), p_batch_size),
        v_runs;
end
$$;
comment on function private.prune_retention(integer, integer, integer, timestamptz) is
'Delete one batch (at most p_batch_size rows each) of finished and dead webhook events and of finished '
'sync runs older than p_event_days (never the newest run, the newest succeeded run or the '
'greatest-watermark run of a merchant account and kind) and of mx_ingest / mx_ingest_dlq '
'archive rows older than p_archive_days (a dead event''s dead letter stays in the queue); also idle '
'webhook rate-limit buckets and old reject counters; call again, one transaction per call, until it '
'returns zeros.';
