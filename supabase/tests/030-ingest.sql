-- private.ingest_webhook: every outcome, what it stores and what it queues.
begin;
\ir _helpers.psql

select plan(50);

select tests.create_practice('Ingest Clinic', 'ingest-clinic') as practice_id \gset
select tests.create_practice('Other Clinic', 'other-clinic') as other_practice_id \gset
select tests.create_merchant_account(:'practice_id', 1001) as account_id \gset
select tests.create_merchant_account(:'other_practice_id', 2002) as other_account_id \gset
select tests.queue_length('mx_ingest') as queue_before \gset
select count(*) as events_before from app.webhook_events \gset

-- ---------------------------------------------------------------------------
-- queued
-- ---------------------------------------------------------------------------
select
    i.outcome as first_outcome,
    i.event_id as first_event
from private.ingest_webhook(
        tests.token_for(1001), tests.webhook_body(1001, 5001, 'PaymentSuccess'), '{"raw": true}'
    ) as i
\gset

select is(:'first_outcome'::text, 'queued', 'a payment event is queued');
select results_eq(
    format(
        $$ select practice_id, merchant_account_id, mx_merchant_id, event_type, payment_id, dedupe_key, status,
            attempts, duplicate_count
        from app.webhook_events where id = %s $$,
        :'first_event'
    ),
    format(
        $$ values (%L::uuid, %L::uuid, 1001::bigint, 'PaymentSuccess', 5001::bigint, '1001:PaymentSuccess:5001',
            'queued', 0, 0) $$,
        :'practice_id', :'account_id'
    ),
    'the queued event records its practice, account, merchant, type, payment id and dedupe key'
);
select is(
    (
        select m.message from pgmq.q_mx_ingest as m inner join app.webhook_events as e on m.msg_id = e.msg_id
        where e.id = :'first_event'
    ),
    jsonb_build_object('event_id', :'first_event'::bigint),
    'the queue holds one message naming the event, and the event records its msg_id'
);
select is(tests.queue_length('mx_ingest'), :'queue_before'::bigint + 1, 'queued: the queue grew by one message');

-- ---------------------------------------------------------------------------
-- duplicate
-- ---------------------------------------------------------------------------
select results_eq(
    $$ select outcome, event_id from private.ingest_webhook(tests.token_for(1001),
        tests.webhook_body(1001, 5001, 'PaymentSuccess')) $$,
    format($$ values ('duplicate', %s::bigint) $$, :'first_event'),
    'the same payment event again is a duplicate of the first event'
);
select private.ingest_webhook(tests.token_for(1001), tests.webhook_body(1001, 5001, 'PaymentSuccess'));
select results_eq(
    format(
        $$ select duplicate_count, last_duplicate_at is not null, status from app.webhook_events where id = %s $$,
        :'first_event'
    ),
    $$ values (2, true, 'queued') $$,
    'each duplicate increments duplicate_count and stamps last_duplicate_at; the status is unchanged'
);
select is(
    (select count(*) from app.webhook_events where payment_id = 5001),
    1::bigint,
    'duplicates store no second event'
);
select is(tests.queue_length('mx_ingest'), :'queue_before'::bigint + 1, 'duplicates queue no second message');

select is(
    (select outcome from private.ingest_webhook(tests.token_for(1001), tests.webhook_body(1001, 5001, 'PaymentFail'))),
    'queued',
    'another event type for the same payment is a new event'
);
select is(
    (select outcome from private.ingest_webhook(tests.token_for(1001), tests.webhook_body(1001, 5001, 'RefundCreated'))),
    'queued',
    'RefundCreated is a payment event and is queued'
);
select is(tests.queue_length('mx_ingest'), :'queue_before'::bigint + 3, 'three distinct events, three messages');

-- ---------------------------------------------------------------------------
-- unknown_token
-- ---------------------------------------------------------------------------
select count(*) as events_mid from app.webhook_events \gset
select results_eq(
    $$ select outcome, event_id from private.ingest_webhook('no-such-token-0123456789abcdef',
        tests.webhook_body(1001, 5002, 'PaymentSuccess')) $$,
    $$ values ('unknown_token', null::bigint) $$,
    'an unknown token is refused without an event id'
);
select is(
    (select count(*) from app.webhook_events),
    :'events_mid'::bigint,
    'unknown_token stores nothing'
);

-- ---------------------------------------------------------------------------
-- merchant_mismatch and rejected
-- ---------------------------------------------------------------------------
select
    i.outcome as mismatch_outcome,
    i.event_id as mismatch_event
from private.ingest_webhook(tests.token_for(1001), tests.webhook_body(9999, 5003, 'PaymentSuccess'), 'body') as i \gset
select is(:'mismatch_outcome'::text, 'merchant_mismatch', 'a merchantId other than the token''s is a mismatch');
select results_eq(
    format(
        $$ select status, reject_reason, payment_id, msg_id, raw_body, payload ->> 'merchantId'
        from app.webhook_events where id = %s $$,
        :'mismatch_event'
    ),
    $$ values ('rejected', 'merchantId 9999 does not belong to this callback URL', null::bigint, null::bigint,
        'body', '9999') $$,
    'the mismatch is stored as rejected with its reason, payload and raw body, not queued'
);
select is(
    (select outcome from private.ingest_webhook(tests.token_for(2002), tests.webhook_body(1001, 5004, 'PaymentSuccess'))),
    'merchant_mismatch',
    'another practice''s token cannot post events of this merchant'
);
select i.event_id as no_merchant_event
from private.ingest_webhook(tests.token_for(1001), '{"eventType": "PaymentSuccess", "id": "5005"}') as i \gset
select is(
    (select reject_reason from app.webhook_events where id = :'no_merchant_event'),
    'merchantId is missing',
    'a body without merchantId is a mismatch too'
);

select
    i.outcome as problem_outcome,
    i.event_id as problem_event
from private.ingest_webhook(tests.token_for(1001), '{}', '{not json', 'body is not valid JSON') as i \gset
select is(:'problem_outcome'::text, 'rejected', 'a problem reported by the webhook is rejected');
select results_eq(
    format(
        $$ select status, reject_reason, raw_body, practice_id from app.webhook_events where id = %s $$,
        :'problem_event'
    ),
    format($$ values ('rejected', 'body is not valid JSON', '{not json', %L::uuid) $$, :'practice_id'),
    'the rejection stores the reason and the raw body under the token''s practice'
);

select
    i.outcome as abc_outcome,
    i.event_id as abc_event
from private.ingest_webhook(
        tests.token_for(1001), '{"eventType": "PaymentSuccess", "merchantId": "1001", "id": "abc"}'
    ) as i
\gset
select results_eq(
    format($$ select %L, reject_reason, msg_id from app.webhook_events where id = %s $$, :'abc_outcome', :'abc_event'),
    $$ values ('rejected', 'payment event without a numeric payment id in "id"', null::bigint) $$,
    'a payment event with a non-numeric id is rejected and not queued'
);
select is(
    (select outcome from private.ingest_webhook(tests.token_for(1001), '{"eventType": "PaymentFail",
        "merchantId": "1001"}')),
    'rejected',
    'a payment event without an id is rejected'
);
select is(
    (select outcome from private.ingest_webhook(tests.token_for(1001), '{"eventType": "PaymentFail",
        "merchantId": "1001", "id": "1234567890123456789"}')),
    'rejected',
    'a payment id longer than 18 digits is rejected (not a bigint overflow)'
);
select is(tests.queue_length('mx_ingest'), :'queue_before'::bigint + 3, 'rejections queue nothing');

-- ---------------------------------------------------------------------------
-- ignored (not a payment event)
-- ---------------------------------------------------------------------------
select
    i.outcome as ignored_outcome,
    i.event_id as ignored_event
from private.ingest_webhook(tests.token_for(1001), '{"eventType": "CustomerCreated", "merchantId": "1001",
    "customerId": 77}') as i \gset
select is(:'ignored_outcome'::text, 'ignored', 'a non-payment event is ignored');
select results_eq(
    format($$ select status, event_type, payment_id, msg_id, dedupe_key like '1001:CustomerCreated:%%'
        from app.webhook_events where id = %s $$, :'ignored_event'),
    $$ values ('ignored', 'CustomerCreated', null::bigint, null::bigint, true) $$,
    'the ignored event is stored, keyed by its body, and not queued'
);
select results_eq(
    $$ select outcome, event_id from private.ingest_webhook(tests.token_for(1001), '{"eventType": "CustomerCreated",
        "merchantId": "1001", "customerId": 77}') $$,
    format($$ values ('duplicate', %s::bigint) $$, :'ignored_event'),
    'the same non-payment body again is a duplicate'
);
select is(
    (select outcome from private.ingest_webhook(tests.token_for(1001), '{"eventType": "CustomerCreated",
        "merchantId": "1001", "customerId": 78}')),
    'ignored',
    'a different non-payment body is a new ignored event'
);
select is(tests.queue_length('mx_ingest'), :'queue_before'::bigint + 3, 'ignored events queue nothing');

-- ---------------------------------------------------------------------------
-- Tokens: rotation, retirement, inactive accounts
-- ---------------------------------------------------------------------------
select throws_ok(
    format($$ select private.add_webhook_token(%L, 'short') $$, :'account_id'),
    '22023', null,
    'a token shorter than 22 characters is refused'
);
select private.add_webhook_token(:'account_id', tests.token_for(1001, 'b')) as second_token_id \gset
select ok(
    (
        select t.token_hash = sha256(convert_to(tests.token_for(1001, 'b'), 'UTF8'))
        from app.webhook_tokens as t where t.id = :'second_token_id'
    ),
    'a token is stored as its sha256 only'
);
select is(
    (
        select outcome
        from private.ingest_webhook(tests.token_for(
                1001, 'a'), tests.webhook_body(
                1001, 5101,
                'PaymentSuccess'
            ))
    ),
    'queued',
    'during a rotation the old token still works'
);
select is(
    (
        select outcome
        from private.ingest_webhook(tests.token_for(
                1001, 'b'), tests.webhook_body(
                1001, 5102,
                'PaymentSuccess'
            ))
    ),
    'queued',
    'during a rotation the new token works'
);
select is(
    private.retire_webhook_tokens(:'account_id', :'second_token_id'),
    1,
    'ending the rotation retires the one other token'
);
select is(
    (
        select outcome
        from private.ingest_webhook(tests.token_for(
                1001, 'a'), tests.webhook_body(
                1001, 5103,
                'PaymentSuccess'
            ))
    ),
    'unknown_token',
    'a retired token is unknown'
);
select is(
    (select count(*) from app.webhook_events where payment_id = 5103),
    0::bigint,
    'nothing is stored for a retired token'
);
select is(
    (
        select outcome
        from private.ingest_webhook(tests.token_for(
                1001, 'b'), tests.webhook_body(
                1001, 5104,
                'PaymentSuccess'
            ))
    ),
    'queued',
    'the kept token still works after the rotation'
);
select is(
    (
        select outcome
        from private.ingest_webhook(tests.token_for(
                2002), tests.webhook_body(
                2002, 5105,
                'PaymentSuccess'
            ))
    ),
    'queued',
    'retiring one account''s tokens leaves other accounts'' tokens alone'
);
update app.merchant_accounts set is_active = false where id = :'other_account_id';
select is(
    (
        select outcome
        from private.ingest_webhook(tests.token_for(
                2002), tests.webhook_body(
                2002, 5106,
                'PaymentSuccess'
            ))
    ),
    'unknown_token',
    'the token of an inactive account is unknown'
);

-- ---------------------------------------------------------------------------
-- Totals
-- ---------------------------------------------------------------------------
select is(tests.queue_length('mx_ingest'), :'queue_before'::bigint + 7, 'seven events were queued in all');
select is_empty(
    $$ select id from app.webhook_events where (status = 'queued') <> (msg_id is not null) $$,
    'every queued event, and only those, has a message'
);
select is(
    (select count(*) from pgmq.q_mx_ingest),
    (select count(*) from app.webhook_events where status = 'queued')::bigint,
    'one message per queued event'
);
select is(
    (select count(*) from app.webhook_events),
    :'events_before'::bigint + 16,
    'sixteen events stored in all (queued, rejected, ignored; none for unknown tokens or duplicates)'
);
select is(
    (select count(*) from app.webhook_events where dedupe_key is null),
    0::bigint,
    'every stored event has a dedupe key'
);
select is(
    (select count(*) from app.webhook_events where status = 'rejected' and dedupe_key not like 'rejected:%'),
    0::bigint,
    'rejected events are keyed by their body (rejected:merchant:sha256)'
);

-- MX retries what it did not get a 2xx for: the same bad body again is counted, not stored again.
select results_eq(
    $$ select outcome from private.ingest_webhook(
        tests.token_for(1001, 'b'), null, '{"broken json', 'body is not valid JSON') $$,
    $$ values ('rejected') $$,
    'a bad body is rejected'
);
select results_eq(
    $$ select outcome from private.ingest_webhook(
        tests.token_for(1001, 'b'), null, '{"broken json', 'body is not valid JSON') $$,
    $$ values ('rejected') $$,
    'the same bad body again is rejected again'
);
select results_eq(
    $$ select count(*), max(duplicate_count) from app.webhook_events where raw_body = '{"broken json' $$,
    $$ values (1::bigint, 1) $$,
    'and stored once, its repeat counted'
);
select event_id as no_type_event
from private.ingest_webhook(tests.token_for(1001, 'b'), '{"merchantId": "1001"}'::jsonb, null, null) \gset
select results_eq(
    format($$ select status, reject_reason from app.webhook_events where id = %s $$, :no_type_event),
    $$ values ('rejected', 'eventType is missing') $$,
    'a body without eventType is rejected by the procedure itself'
);

-- The webhook's role can call its procedure and nothing more.
set local role mx_webhook;
select is(
    (
        select outcome
        from private.ingest_webhook(tests.token_for(
                1001, 'b'), tests.webhook_body(
                1001, 5201,
                'PaymentSuccess'
            ))
    ),
    'queued',
    'mx_webhook can call private.ingest_webhook'
);
select throws_ok(
    $$ select count(*) from app.webhook_events $$, '42501', null,
    'mx_webhook cannot read app.webhook_events directly'
);
reset role;

select * from finish();
rollback;
