-- Alerting: the de-duplicating claim, its release after a failed delivery, the signals
-- (dead letters, failing credentials, silent merchants, reconciliation with and without
-- app.sync_runs) and the worker's grants.
begin;
\ir _helpers.psql

select plan(20);

select tests.create_practice('Alert Clinic', 'alert-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 3001) as busy_id \gset
select tests.create_merchant_account(:'practice_id', 3002) as sparse_id \gset

-- ---------------------------------------------------------------------------
-- claim and release
-- ---------------------------------------------------------------------------
select ok(private.alert_claim('k1', 'slack', 'test', 'first', 60), 'a new key is claimed');
select ok(not private.alert_claim('k1', 'slack', 'test', 'again', 60), 'the same key is not claimed again');
select ok(private.alert_claim('k1', 'email', 'test', 'first', 60), 'another channel has its own claim');
select private.alert_release('k1', 'slack', 'HTTP 500');
select results_eq(
    $$ select failure_count, last_error, send_count from app.alert_log where alert_key = 'k1' and channel = 'slack' $$,
    $$ values (1, 'HTTP 500', 0) $$,
    'a release records the failure'
);
select ok(private.alert_claim('k1', 'slack', 'test', 'retry', 60), 'a released key is claimed at once');
update app.alert_log set claimed_at = now() - interval '61 minutes' where alert_key = 'k1' and channel = 'email';
select ok(private.alert_claim('k1', 'email', 'test', 'later', 60), 'after the repeat window the key is due again');
select ok(private.alert_claim('k1', 'slack', 'test', 'now', 0), 'a zero window always sends');

-- ---------------------------------------------------------------------------
-- signals
-- ---------------------------------------------------------------------------
select is(
    private.alert_signals() -> 'queues' -> 'mx_ingest_dlq' ->> 'depth',
    '0',
    'the dead-letter queue is empty'
);
select is(jsonb_array_length(private.alert_signals() -> 'credentials_failed'), 0, 'no credentials fail yet');

-- a dead letter with failing credentials
select tests.receive_payment_event(3001, 9001) as event_id \gset
select tests.claim_event(:'event_id') as msg_id \gset
select private.dead_letter_ingest_event(:'msg_id', :'event_id', 'MX invalid_credentials', true);
select is(
    (private.alert_signals() -> 'dead_letters' ->> 'new')::int, 1, 'the new dead letter is counted'
);
select is(
    private.alert_signals() -> 'queues' -> 'mx_ingest_dlq' ->> 'depth', '1', 'the dead-letter queue holds it'
);
select is(
    private.alert_signals() -> 'credentials_failed' -> 0 ->> 'mx_merchant_id',
    '3001',
    'the merchant with failing credentials is listed'
);
select ok(private.alert_claim('dead_letters', 'slack', 'dead_letters', 'told', 60));
select is(
    (private.alert_signals() -> 'dead_letters' ->> 'new')::int, 0, 'after the alert it is no longer new'
);

-- silence: hourly webhooks that stopped 30 hours ago, and webhooks every 20 hours
delete from app.webhook_events;
insert into app.webhook_events (practice_id, merchant_account_id, mx_merchant_id, event_type, status, received_at)
select
    :'practice_id'::uuid as practice_id,
    :'busy_id'::uuid as merchant_account_id,
    3001 as mx_merchant_id,
    'PaymentSuccess' as event_type,
    'processed' as status,
    now() - interval '30 hours' - g * interval '1 hour' as received_at
from generate_series(0, 9) as g;
insert into app.webhook_events (practice_id, merchant_account_id, mx_merchant_id, event_type, status, received_at)
select
    :'practice_id'::uuid as practice_id,
    :'sparse_id'::uuid as merchant_account_id,
    3002 as mx_merchant_id,
    'PaymentSuccess' as event_type,
    'processed' as status,
    now() - interval '30 hours' - g * interval '20 hours' as received_at
from generate_series(0, 9) as g;
select is(
    (select jsonb_agg(s ->> 'mx_merchant_id') from jsonb_array_elements(private.alert_signals(24, 3) -> 'silent_merchants') as s),
    '["3001"]'::jsonb,
    'silent 30h with a usual gap of 1h: reported; with a usual gap of 20h (threshold 60h): not'
);
select is(
    jsonb_array_length(private.alert_signals(12, 1) -> 'silent_merchants'),
    2,
    'with k = 1 and 12h minimum both are silent'
);

-- reconciliation: without app.sync_runs the check is not available; with it, reconcile runs
-- of the last day that queued missed payments (and failed runs) are counted
alter table app.sync_runs rename to sync_runs_hidden;
select is(private.alert_signals() -> 'reconcile' ->> 'available', 'false', 'without app.sync_runs: not available');
alter table app.sync_runs_hidden rename to sync_runs;
insert into app.sync_runs (practice_id, merchant_account_id, kind, status, finished_at, queued)
values
(:'practice_id', :'busy_id', 'reconcile', 'succeeded', now(), 3),
(:'practice_id', :'busy_id', 'reconcile', 'succeeded', now(), 0),
(:'practice_id', :'busy_id', 'reconcile', 'failed', now(), 0),
(:'practice_id', :'busy_id', 'backfill', 'succeeded', now(), 50),
(:'practice_id', :'busy_id', 'reconcile', 'succeeded', now() - interval '3 days', 9);
select is(
    private.alert_signals() -> 'reconcile',
    jsonb_build_object(
        'available', true, 'count_column', 'queued', 'time_column', 'finished_at',
        'runs_with_gaps', 1, 'gaps', 3, 'failed_runs', 1, 'latest_gap_at', now()
    ),
    'reconcile runs of the last day with missed webhooks and failures are counted (not backfills)'
);

-- ---------------------------------------------------------------------------
-- privileges
-- ---------------------------------------------------------------------------
select ok(
    has_function_privilege('mx_worker', 'private.alert_signals(double precision, double precision)', 'execute')
    and has_function_privilege('mx_worker', 'private.alert_claim(text, text, text, text, integer)', 'execute')
    and has_function_privilege('mx_worker', 'private.alert_release(text, text, text)', 'execute')
    and has_function_privilege('mx_worker', 'private.queue_depths()', 'execute'),
    'the worker may run the checks and read the queue depths'
);
select ok(
    not has_function_privilege('authenticated', 'private.alert_signals(double precision, double precision)', 'execute')
    and not has_table_privilege('authenticated', 'app.alert_log', 'select'),
    'clients may not read alert signals or the alert log'
);

select * from finish();
rollback;
