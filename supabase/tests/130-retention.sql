-- Retention: finished events older than the limit go, the rest stays; archive rows of both
-- queues older than the limit go; batches are bounded; the queue tables carry their
-- storage settings.
begin;
\ir _helpers.psql

select plan(9);

select tests.create_practice('Retention Clinic', 'retention-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 4001) as account_id \gset

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
    $$ values (2::bigint, 2::bigint, 1::bigint) $$,
    'the first call deletes at most one batch of each'
);
select results_eq(
    $$ select * from private.prune_retention(30, 7, 2, '2026-03-31 12:00+00') $$,
    $$ values (1::bigint, 0::bigint, 0::bigint) $$,
    'the next call deletes the rest'
);
select results_eq(
    $$ select * from private.prune_retention(30, 7, 2, '2026-03-31 12:00+00') $$,
    $$ values (0::bigint, 0::bigint, 0::bigint) $$,
    'then nothing is left to delete'
);
select set_eq(
    $$ select reject_reason from app.webhook_events where merchant_account_id = $$ || quote_literal(:'account_id'),
    array['edge', 'new', 'dead', 'queued', 'retrying'],
    'events exactly at the limit, newer ones, and unfinished or dead ones stay'
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
