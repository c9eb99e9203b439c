-- Retention: finished and dead events older than the limit go, the rest stays; archive rows of both
-- queues older than the limit go; finished sync runs older than the event limit go, except
-- the newest run, the newest succeeded run and the greatest-watermark run of each merchant
-- account and kind (the watermark and --resume read those); batches are bounded; the queue
-- tables carry their storage settings.
begin;
\ir _helpers.psql

select plan(19);

select tests.create_practice('Retention Clinic', 'retention-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 4001) as account_id \gset
select tests.create_merchant_account(:'practice_id', 4002) as other_account_id \gset

-- events at the boundary: as_of is fixed, limit 30 days
insert into app.webhook_events (practice_id, merchant_account_id, status, received_at, reject_reason)
values
(:'practice_id', :'account_id', 'processed', '2026-03-31 12:00+00'::timestamptz - interval '30 days 1 second', 'old'),
(:'practice_id', :'account_id', 'ignored', '2026-03-31 12:00+00'::timestamptz - interval '31 days', 'old'),
(:'practice_id', :'account_id', 'rejected', '2026-03-31 12:00+00'::timestamptz - interval '60 days', 'old'),
(:'practice_id', :'account_id', 'processed', '2026-03-31 12:00+00'::timestamptz - interval '30 days', 'edge'),
(:'practice_id', :'account_id', 'processed', '2026-03-31 12:00+00'::timestamptz - interval '29 days', 'new'),
(:'practice_id', :'account_id', 'dead', '2026-03-31 12:00+00'::timestamptz - interval '90 days', 'dead'),
(:'practice_id', :'account_id', 'queued', '2026-03-31 12:00+00'::timestamptz - interval '90 days', 'queued'),
(:'practice_id', :'account_id', 'retrying', '2026-03-31 12:00+00'::timestamptz - interval '90 days', 'retrying');

-- archive rows: two old and one recent in each queue's archive
select private.queue_archive('mx_ingest', private.queue_send('mx_ingest', '{"t": "old-1"}'));
select private.queue_archive('mx_ingest', private.queue_send('mx_ingest', '{"t": "old-2"}'));
select private.queue_archive('mx_ingest', private.queue_send('mx_ingest', '{"t": "new"}'));
select private.queue_archive('mx_ingest_dlq', private.queue_send('mx_ingest_dlq', '{"t": "old-1"}'));
select private.queue_archive('mx_ingest_dlq', private.queue_send('mx_ingest_dlq', '{"t": "new"}'));
update pgmq.a_mx_ingest set archived_at = '2026-03-31 12:00+00'::timestamptz - interval '8 days'
where message ->> 't' like 'old%';
update pgmq.a_mx_ingest set archived_at = '2026-03-31 12:00+00'::timestamptz - interval '7 days'
where message ->> 't' = 'new';
update pgmq.a_mx_ingest_dlq set archived_at = '2026-03-31 12:00+00'::timestamptz - interval '8 days'
where message ->> 't' like 'old%';
update pgmq.a_mx_ingest_dlq set archived_at = '2026-03-31 12:00+00'::timestamptz - interval '1 day'
where message ->> 't' = 'new';
-- archive rows of other tests' runs (none in a fresh database) would not be older than these

select results_eq(
    $$ select * from private.prune_retention(30, 7, 2, '2026-03-31 12:00+00') $$,
    $$ values (2::bigint, 2::bigint, 1::bigint, 0::bigint) $$,
    'the first call deletes at most one batch of each'
);
select results_eq(
    $$ select * from private.prune_retention(30, 7, 2, '2026-03-31 12:00+00') $$,
    $$ values (2::bigint, 0::bigint, 0::bigint, 0::bigint) $$,
    'the next call deletes the rest (dead events too)'
);
select results_eq(
    $$ select * from private.prune_retention(30, 7, 2, '2026-03-31 12:00+00') $$,
    $$ values (0::bigint, 0::bigint, 0::bigint, 0::bigint) $$,
    'then nothing is left to delete'
);
select set_eq(
    $$ select reject_reason from app.webhook_events where merchant_account_id = $$ || quote_literal(:'account_id'),
    array['edge', 'new', 'queued', 'retrying'],
    'events exactly at the limit, newer ones, and unfinished ones stay'
);
select set_eq(
    $$ select message ->> 't' from pgmq.a_mx_ingest where message ? 't' $$,
    array['new'],
    'the ingest archive keeps the row exactly at the limit'
);
select set_eq(
    $$ select message ->> 't' from pgmq.a_mx_ingest_dlq where message ? 't' $$,
    array['new'],
    'the dead-letter archive keeps recent rows'
);
-- ---------------------------------------------------------------------------
-- sync runs (the event retention, 30 days: the limit is 2026-03-01 12:00)
-- ---------------------------------------------------------------------------
-- A run finished p_age before as_of (started 5 minutes earlier), labelled in its cursor.
create function tests.sync_run(
    p_account_id uuid,
    p_kind text,
    p_status text,
    p_age interval,
    p_label text,
    p_watermark timestamptz default null,
    p_resumed_from_id bigint default null
)
returns bigint
language sql
set search_path = ''
as $$
    insert into app.sync_runs (
        practice_id, merchant_account_id, kind, status, started_at, heartbeat_at, finished_at,
        watermark, cursor, resumed_from_id
    )
    select
        m.practice_id, m.id, p_kind, p_status,
        '2026-03-31 12:00+00'::timestamptz - p_age - interval '5 minutes',
        '2026-03-31 12:00+00'::timestamptz - p_age,
        case when p_status <> 'running' then '2026-03-31 12:00+00'::timestamptz - p_age end,
        p_watermark,
        jsonb_build_object('phase', 'payments', 'offset', 100, 't', p_label),
        p_resumed_from_id
    from app.merchant_accounts as m
    where m.id = p_account_id
    returning id
$$;

-- first account: reconciles, two failed backfills (the second resumed from the first),
-- contract syncs
select tests.sync_run(:'account_id', 'reconcile', 'succeeded', '60 days', 'r1', '2026-01-30 09:00+00');
select tests.sync_run(:'account_id', 'reconcile', 'failed', '50 days', 'r2');
select tests.sync_run(:'account_id', 'reconcile', 'succeeded', '45 days', 'r3', '2026-02-14 09:00+00');
select tests.sync_run(:'account_id', 'reconcile', 'succeeded', '40 days', 'r4', '2026-02-19 09:00+00');
-- the newest succeeded reconcile: its watermark is the account's, however old it is
select tests.sync_run(:'account_id', 'reconcile', 'succeeded', '35 days', 'r5', '2026-02-24 09:00+00');
-- failed ones after it: exactly at the limit (stays) and recent
select tests.sync_run(:'account_id', 'reconcile', 'failed', '30 days', 'r6');
select tests.sync_run(:'account_id', 'reconcile', 'failed', '10 days', 'r7');
select tests.sync_run(:'account_id', 'backfill', 'failed', '70 days', 'b1') as b1 \gset
select tests.sync_run(:'account_id', 'backfill', 'failed', '65 days', 'b2', null, :'b1') as b2 \gset
update app.sync_runs set since = '2025-06-01', cursor = '{"phase": "contracts", "offset": 300, "t": "b2"}'
where id = :'b2';
select tests.sync_run(:'account_id', 'contracts', 'succeeded', '80 days', 'c1');
select tests.sync_run(:'account_id', 'contracts', 'succeeded', '75 days', 'c2');
select tests.sync_run(:'account_id', 'contracts', 'failed', '20 days', 'c3');
-- second account: the run with the greatest watermark is not the newest succeeded one; a
-- contract sync has been running (its process gone) for 90 days, after an older failure
select tests.sync_run(:'other_account_id', 'reconcile', 'succeeded', '58 days', 's1', '2026-01-31 09:00+00');
select tests.sync_run(:'other_account_id', 'reconcile', 'succeeded', '55 days', 's2', '2026-02-05 10:00+00');
select tests.sync_run(:'other_account_id', 'reconcile', 'succeeded', '50 days', 's3', '2026-02-05 09:00+00');
select tests.sync_run(:'other_account_id', 'contracts', 'failed', '95 days', 't1');
select tests.sync_run(:'other_account_id', 'contracts', 'running', '90 days', 't2');

select private.reconcile_watermark(:'account_id') as watermark_before \gset
select private.reconcile_watermark(:'other_account_id') as other_watermark_before \gset

-- deletable: r1 r2 r3 r4 b1 c1 s1 t1, three a call, oldest first
select results_eq(
    $$ select * from private.prune_retention(30, 7, 3, '2026-03-31 12:00+00') $$,
    $$ values (0::bigint, 0::bigint, 0::bigint, 3::bigint) $$,
    'old finished sync runs go one batch a call'
);
select is_empty(
    $$ select from app.sync_runs where cursor ->> 't' in ('t1', 'c1', 'b1') $$,
    'the oldest finished runs go first'
);
select results_eq(
    $$ select * from private.prune_retention(30, 7, 3, '2026-03-31 12:00+00') $$,
    $$ values (0::bigint, 0::bigint, 0::bigint, 3::bigint) $$,
    'the next call deletes the next batch of sync runs'
);
select results_eq(
    $$ select * from private.prune_retention(30, 7, 3, '2026-03-31 12:00+00') $$,
    $$ values (0::bigint, 0::bigint, 0::bigint, 2::bigint) $$,
    'then the rest of them'
);
select results_eq(
    $$ select * from private.prune_retention(30, 7, 3, '2026-03-31 12:00+00') $$,
    $$ values (0::bigint, 0::bigint, 0::bigint, 0::bigint) $$,
    'then no sync run is left to delete'
);
select set_eq(
    $$ select cursor ->> 't' from app.sync_runs where cursor ? 't' $$,
    array['r5', 'r6', 'r7', 'b2', 'c2', 'c3', 's2', 's3', 't2'],
    'recent and running runs stay, and so do the newest, the newest succeeded and the '
    || 'greatest-watermark run of each account and kind'
);
select results_eq(
    format(
        $$ select private.reconcile_watermark(%L), private.reconcile_watermark(%L) $$,
        :'account_id', :'other_account_id'
    ),
    format(
        $$ values (%L::timestamptz, %L::timestamptz) $$,
        :'watermark_before', :'other_watermark_before'
    ),
    'the reconcile watermark read after pruning is the one read before'
);
select is(
    :'watermark_before'::timestamptz, '2026-02-24 09:00+00'::timestamptz,
    'that watermark is the newest succeeded reconcile''s'
);
select results_eq(
    format($$ select run_id, since, cursor, status from private.resumable_backfill(%L) $$, :'account_id'),
    format(
        $$ values (%s::bigint, '2025-06-01'::timestamptz, '{"phase": "contracts", "offset": 300, "t": "b2"}'::jsonb, 'failed') $$,
        :'b2'
    ),
    'the failed backfill to resume stays, with its since and cursor'
);
select is(
    (select resumed_from_id from app.sync_runs where id = :'b2'), null,
    'the run it was resumed from is gone (its reference set to null)'
);

select throws_ok(
    $$ select * from private.prune_retention(0, 7) $$, '22023', null, 'a retention of zero days is refused'
);
select ok(
    (
        select reloptions @> array['fillfactor=80', 'autovacuum_vacuum_threshold=200']
        from pg_catalog.pg_class where oid = 'pgmq.q_mx_ingest'::regclass
    ),
    'the queue table carries its vacuum-friendly settings'
);
select ok(
    has_function_privilege('mx_worker', 'private.prune_retention(integer, integer, integer, timestamptz)', 'execute')
    and not has_function_privilege('mx_worker', 'private.queue_prune_archive(text, timestamptz, integer)', 'execute'),
    'the worker may prune, but not reach the archives directly'
);

select * from finish();
rollback;
