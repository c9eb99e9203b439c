-- Scheduled SQL work through pg_cron, where the extension exists (Supabase: enable it under
-- Database > Extensions first). Run as the database owner (postgres):
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f sql/ops/schedule_pg_cron.sql
--
-- pg_cron can only do SQL work:
--   mx-retention  every 5 minutes, one batch (at most 5000 rows a table, one transaction) of
--                 private.prune_retention: finished webhook events and sync runs after 30 days
--                 (never the newest, newest succeeded or watermark run of a merchant and kind),
--                 pgmq archive rows of mx_ingest and mx_ingest_dlq after 7 days. Small batches
--                 often, rather than one long delete, so no long transaction holds back vacuum
--                 (12 batches an hour: up to 60000 rows a table an hour).
--   mx-overdue    hourly at :07, private.mark_overdue_memberships() when the schema has it
--                 (the membership sweep: overdue and lapse, practice by practice; a practice
--                 that fails is raised as a WARNING in the job's log, the others are swept).
-- Reconciliation and contract sync need HTTP calls to MX Merchant (paging, Basic auth,
-- backoff): they are not scheduled here (pg_net is not used for them). The worker's own
-- scheduler inside `python -m worker run` always runs them (docs/sync.md); it also prunes
-- and sweeps overdue memberships, which is harmless next to these jobs (both are idempotent).
--
-- Safe to run again: cron.schedule with a job name replaces the job of that name. Without
-- pg_cron it only says so.

do $schedule$
begin
    if not exists (select from pg_catalog.pg_extension where extname = 'pg_cron') then
        raise notice 'pg_cron is not installed: the worker''s scheduler runs every scheduled job';
        return;
    end if;

    perform cron.schedule(
        'mx-retention',
        '*/5 * * * *',
        $job$select * from private.prune_retention(30, 7, 5000)$job$
    );

    if to_regprocedure('private.mark_overdue_memberships(timestamptz)') is not null then
        perform cron.schedule(
            'mx-overdue',
            '7 * * * *',
            $job$select private.mark_overdue_memberships()$job$
        );
    else
        raise notice 'private.mark_overdue_memberships does not exist: mx-overdue not scheduled';
    end if;
end
$schedule$;
