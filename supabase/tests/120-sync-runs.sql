-- Sync runs: lifecycle (running first, outcome after), watermark only from a success, one
-- running run per kind, queueing of unprocessed payments with their own dedupe key, RLS.
begin;
\ir _helpers.psql

select plan(20);

select tests.create_practice('Sync Clinic', 'sync-clinic') as practice_id \gset
select tests.create_practice('Other Clinic', 'other-clinic') as other_practice_id \gset
select tests.create_merchant_account(:'practice_id', 3001) as account_id \gset
select tests.create_merchant_account(:'other_practice_id', 3002) as other_account_id \gset

-- ---------------------------------------------------------------------------
-- lifecycle and watermark
-- ---------------------------------------------------------------------------
select private.start_sync_run(:'account_id', 'reconcile') as run_1 \gset
select is(
    (select status from app.sync_runs where id = :'run_1'), 'running', 'a run starts as running'
);
select throws_ok(
    format($$ select private.start_sync_run(%L, 'reconcile') $$, :'account_id'),
    '55P03', null, 'a second run of the same kind and merchant is refused while one runs'
);
select lives_ok(
    format($$ select private.start_sync_run(%L, 'contracts') $$, :'account_id'),
    'a run of another kind may run at the same time'
);
select is(
    private.finish_sync_run(:'run_1', false, 'MX: 503', 1, 2, 2, '{"offset": 2}', '2026-03-01 10:00+00'),
    'failed', 'a failure is recorded as failed'
);
select results_eq(
    format($$ select error, watermark, finished_at is not null from app.sync_runs where id = %s $$, :'run_1'),
    $$ values ('MX: 503', null::timestamptz, true) $$,
    'a failed run keeps its error and gets no watermark'
);
select is(private.reconcile_watermark(:'account_id'), null, 'no watermark before a success');
select is(
    private.finish_sync_run(:'run_1', true, null, 1, 0, 0),
    null, 'a finished run cannot be finished again'
);
select private.start_sync_run(:'account_id', 'reconcile') as run_2 \gset
select private.finish_sync_run(:'run_2', true, null, 3, 0, 0, null, '2026-03-01 10:00+00');
select is(
    private.reconcile_watermark(:'account_id'), '2026-03-01 10:00+00'::timestamptz,
    'the watermark comes from the succeeded run'
);

-- a stale running run (no heartbeat) is recorded as failed by the next start
select private.start_sync_run(:'account_id', 'backfill', 'operator', '2026-01-01') as run_3 \gset
update app.sync_runs set heartbeat_at = now() - interval '1 hour' where id = :'run_3';
select private.start_sync_run(:'account_id', 'backfill') as run_4 \gset
select matches(
    (select status || ': ' || error from app.sync_runs where id = :'run_3'),
    '^failed: abandoned', 'an abandoned run is recorded as failed'
);
select is(
    (select r.run_id from private.resumable_backfill(:'account_id') as r), :'run_4'::bigint,
    'the newest backfill is the one to resume'
);

-- ---------------------------------------------------------------------------
-- queueing what is not processed
-- ---------------------------------------------------------------------------
select tests.process_payment(
    3001, tests.payment_json(9101, 3001, '2026-03-01 09:00+00', 'Approved', 'Sale', 'API', 10.00, 'Ann')
);
select private.start_sync_run(:'account_id', 'reconcile') as run_5 \gset
select results_eq(
    format(
        $$ select found, queued from private.queue_sync_payments(%s, %L) $$, :'run_5',
        jsonb_build_array(
            jsonb_build_object('id', 9101, 'merchant_id', 3001, 'status', 'Approved', 'refunded_amount', '0'),
            jsonb_build_object('id', 9102, 'merchant_id', 3001, 'status', 'Approved', 'refunded_amount', '0'),
            jsonb_build_object('id', 9101, 'merchant_id', 3001, 'status', 'Settled', 'refunded_amount', '0'),
            jsonb_build_object('id', 9103, 'merchant_id', 3002, 'status', 'Approved', 'refunded_amount', '0')
        )
    ),
    $$ values (2, 2) $$,
    'a missing payment and a changed status are queued; a stored one and another merchant''s are not'
);
select results_eq(
    $$ select payment_id, event_type, origin, status, dedupe_key from app.webhook_events
    where origin = 'reconcile' order by payment_id, dedupe_key $$,
    $$ values
        (9101::bigint, 'Reconcile', 'reconcile', 'queued', '3001:reconcile:9101:Settled:0.00'),
        (9102::bigint, 'Reconcile', 'reconcile', 'queued', '3001:reconcile:9102:Approved:0.00') $$,
    'reconcile events carry their own type, origin and dedupe key'
);
select results_eq(
    format(
        $$ select found, queued from private.queue_sync_payments(%s, %L) $$, :'run_5',
        jsonb_build_array(jsonb_build_object('id', 9102, 'merchant_id', 3001, 'status', 'Approved'))
    ),
    $$ values (0, 0) $$,
    'a payment whose event is still queued is not queued again'
);
select is(
    (select count(*)::integer from private.claim_ingest_events(10, 30) where event_type = 'Reconcile'),
    2, 'the worker claims reconcile events like webhook ones'
);

-- ---------------------------------------------------------------------------
-- RLS: owners and admins read their practice's runs, in the table as in the api view
-- (issue 12, item 9: the table no longer shows staff what the view hides)
-- ---------------------------------------------------------------------------
select tests.create_user('staff@sync.test') as staff_id \gset
select tests.create_user('owner@sync.test') as owner_id \gset
select tests.add_member(:'practice_id', :'staff_id', 'staff');
select tests.add_member(:'practice_id', :'owner_id', 'owner');
select private.start_sync_run(:'other_account_id', 'reconcile');

select tests.authenticate_as(:'staff_id');
select is((select count(*)::integer from app.sync_runs), 0, 'staff read no runs in the table either');
select is(
    (select count(*)::integer from app.sync_runs where merchant_account_id <> :'account_id'), 0,
    'staff read no other practice''s runs'
);
select is((select count(*)::integer from api.sync_runs), 0, 'staff see nothing in the admin view');
select tests.authenticate_as(:'owner_id');
select is((select count(*)::integer from api.sync_runs), 6, 'an owner sees the practice''s runs in the view');
select is((select count(*)::integer from app.sync_runs), 6, 'and in the table');
select is(
    (select count(*)::integer from app.sync_runs where merchant_account_id <> :'account_id'), 0,
    'an owner reads no other practice''s runs'
);
select tests.clear_authentication();

select * from finish();
rollback;
