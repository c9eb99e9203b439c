-- Retention: raw events and pgmq archives pruned in small batches, and storage settings
-- that keep the queue tables from bloating (docs/sync.md, "Retention").
--
-- pgmq keeps each queue in pgmq.q_<name> and its archive in pgmq.a_<name> (archive columns
-- msg_id, read_ct, enqueued_at, archived_at, vt, message: the same from 1.4.4 to 1.13).
-- Those names are pgmq internals, so only the two wrappers below touch them.
--
-- private.prune_retention deletes at most one batch per table per call and returns what it
-- deleted; callers loop while anything was deleted, one transaction per call (the worker's
-- scheduler in autocommit; pg_cron through a DO block that commits between calls), so no
-- long transaction holds back vacuum. (A procedure looping with COMMIT cannot carry the
-- `set search_path` every function here must have.)

create function private.queue_prune_archive(queue_name text, older_than timestamptz, max_rows integer)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_deleted bigint;
begin
    if not exists (select from pgmq.meta as m where m.queue_name = queue_prune_archive.queue_name) then
        raise exception 'unknown queue %', queue_name using errcode = '22023';
    end if;
    execute format(
        'delete from pgmq.%1$I as a where a.msg_id in ('
        'select b.msg_id from pgmq.%1$I as b where b.archived_at < $1 '
        'order by b.archived_at limit $2 for update skip locked)',
        'a_' || queue_name
    ) using older_than, max_rows;
    get diagnostics v_deleted = row_count;
    return v_deleted;
end
$$;
comment on function private.queue_prune_archive(text, timestamptz, integer) is
'Delete at most max_rows archived messages of a queue archived before older_than (oldest first).';

create function private.queue_tune_storage(queue_name text)
returns void
language plpgsql
security definer
set search_path = ''
as $$
begin
    if not exists (select from pgmq.meta as m where m.queue_name = queue_tune_storage.queue_name) then
        raise exception 'unknown queue %', queue_name using errcode = '22023';
    end if;
    -- The queue table is small and hot (every read updates vt and read_ct): vacuum it after a
    -- few hundred dead rows rather than a fraction of its size, and leave room on each page
    -- for those updates to stay HOT.
    execute format(
        'alter table pgmq.%I set (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 200, '
        'autovacuum_analyze_scale_factor = 0.05, fillfactor = 80)',
        'q_' || queue_name
    );
    -- The archive is insert-only until pruning deletes in batches: vacuum after 2% changed.
    execute format(
        'alter table pgmq.%I set (autovacuum_vacuum_scale_factor = 0.02, '
        'autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.05)',
        'a_' || queue_name
    );
end
$$;
comment on function private.queue_tune_storage(text) is
'Autovacuum and fillfactor settings for a queue table and its archive (see docs/sync.md).';

-- Finished events are pruned by age; index them so each batch finds its rows at once.
create index webhook_events_finished_received_idx on app.webhook_events (received_at)
where status in ('processed', 'ignored', 'rejected');

create function private.prune_retention(
    p_event_days integer,
    p_archive_days integer,
    p_batch_size integer default 5000,
    p_as_of timestamptz default now()
)
returns table (webhook_events bigint, ingest_archive bigint, dlq_archive bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_events bigint;
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
    return query select
        v_events,
        private.queue_prune_archive('mx_ingest', p_as_of - make_interval(days => p_archive_days), p_batch_size),
        private.queue_prune_archive('mx_ingest_dlq', p_as_of - make_interval(days => p_archive_days), p_batch_size);
end
$$;
comment on function private.prune_retention(integer, integer, integer, timestamptz) is
'Delete one batch (at most p_batch_size rows each) of finished webhook events older than '
'p_event_days and of mx_ingest / mx_ingest_dlq archive rows older than p_archive_days; call '
'again, one transaction per call, until it returns zeros.';

grant execute on function private.prune_retention(integer, integer, integer, timestamptz) to mx_worker;

-- The worker's scheduler also runs the overdue sweep where pg_cron does not.
grant execute on function private.mark_overdue_memberships(timestamptz) to mx_worker;

select private.queue_tune_storage('mx_ingest');
select private.queue_tune_storage('mx_ingest_dlq');
