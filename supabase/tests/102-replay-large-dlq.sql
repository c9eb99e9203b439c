-- Replaying one dead event while the dead-letter queue holds many other messages: the scan
-- must end (each message read once) and leave every other dead letter in the queue.
begin;
\ir _helpers.psql

select plan(3);

select tests.create_practice('Replay Clinic', 'replay-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 1102) as account_id \gset

select tests.receive_payment_event(1102, 1, 'PaymentSuccess') as dead_event \gset
select tests.claim_event(:dead_event) as dead_msg \gset
select private.dead_letter_ingest_event(:dead_msg, :dead_event, 'MX not_found: payment 1');

-- 600 other dead letters, more than one read batch
select count(private.queue_send('mx_ingest_dlq', jsonb_build_object('event_id', -g)))
from generate_series(1, 600) as g;

set local statement_timeout = '20s';
select results_eq(
    format($$ select outcome from private.replay_events(array[%s]::bigint [], 'test') $$, :dead_event),
    $$ values ('replayed') $$,
    'the replay finishes although the dead-letter queue holds 601 messages'
);
reset statement_timeout;

select is(tests.queue_length('mx_ingest_dlq'), 600::bigint, 'only the replayed event''s dead letter left the queue');
select is(
    (select count(*) from pgmq.q_mx_ingest_dlq where vt > clock_timestamp()),
    0::bigint,
    'the other dead letters are visible again'
);

select * from finish();
rollback;
