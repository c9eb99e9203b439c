-- Issue 12, the edge items: the webhook's per-token rate limit in SQL (12), bounded storage of
-- rejected bodies and pruning of dead events (5), ids that could be card numbers (6), CSV
-- cells a spreadsheet would run (7), a role only for a confirmed or invited address (2).
begin;
\ir _helpers.psql

select plan(36);

select tests.create_practice('Edge Clinic', 'edge-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 7001) as account_id \gset
select tests.create_merchant_account(:'practice_id', 7002) as other_account_id \gset

-- ---------------------------------------------------------------------------
-- 12. per-token rate limit inside private.ingest_webhook
-- ---------------------------------------------------------------------------
-- rate 0.001/s (no refill within the test), burst 3: three calls pass, the fourth is limited
create function tests.limited_call(p_mx_merchant_id bigint, p_payment_id bigint)
returns table (outcome text, event_id bigint, retry_after_seconds double precision)
language sql
set search_path = ''
as $$
    select * from private.ingest_webhook(
        tests.token_for(p_mx_merchant_id), tests.webhook_body(p_mx_merchant_id, p_payment_id, 'PaymentSuccess'),
        null, null, 0.001, 3, 100
    )
$$;

select results_eq(
    $$ select (tests.limited_call(7001, n)).outcome from generate_series(1, 4) as n $$,
    $$ values ('queued'), ('queued'), ('queued'), ('rate_limited') $$,
    'a token gets its burst, then rate_limited'
);
select ok(
    (select retry_after_seconds > 100 from tests.limited_call(7001, 5)),
    'rate_limited says how long to wait (1 token at 0.001/s: ~1000 s)'
);
select is(
    (select count(*)::integer from app.webhook_events where merchant_account_id = :'account_id'),
    3,
    'a rate-limited request stores nothing'
);
select is(
    (select outcome from tests.limited_call(7002, 1)),
    'queued',
    'another token has its own bucket'
);
select is(
    (
        select count(*)::integer from private.ingest_webhook(
            tests.token_for(7001), tests.webhook_body(7001, 6, 'PaymentSuccess'), null, null, 0, 3, 100
        ) as i where i.outcome = 'queued'
    ),
    1,
    'rate 0 disables the limit'
);
select ok(
    (
        select count(*) = 1 and sum(b.tokens) < 1
        from app.webhook_token_buckets as b
        inner join app.webhook_tokens as t on b.token_id = t.id
        where t.merchant_account_id = :'account_id'
    ),
    'the bucket is a row every caller shares, and it is empty'
);
select results_eq(
    $$
        select i.outcome, count(*)::integer
        from generate_series(1, 20) as n
        cross join lateral private.ingest_webhook(
            tests.token_for(7002), tests.webhook_body(7002, 1000 + n, 'PaymentSuccess'), null, null, 64, 16, 100
        ) as i
        group by i.outcome order by i.outcome
    $$,
    $$ values ('queued', 16), ('rate_limited', 4) $$,
    'a high rate splits the bucket into shards (concurrent callers take from different rows): '
    'together they hold the burst'
);
select is(
    (
        select count(*)::integer from app.webhook_token_buckets as b
        inner join app.webhook_tokens as t on b.token_id = t.id
        where t.merchant_account_id = :'other_account_id'
    ),
    16,
    'sixteen shards for 64 requests a second'
);
-- refill: the shards are rewound one hour; the full burst is back, no more
update app.webhook_token_buckets as b set updated_at = b.updated_at - interval '1 hour'
from app.webhook_tokens as t
where b.token_id = t.id and t.merchant_account_id = :'account_id';
select results_eq(
    $$ select (tests.limited_call(7001, 100 + n)).outcome from generate_series(1, 4) as n $$,
    $$ values ('queued'), ('queued'), ('queued'), ('rate_limited') $$,
    'after refilling, the bucket holds its burst again, never more'
);

-- ---------------------------------------------------------------------------
-- 5. rejected bodies: bounded, and capped per merchant account and hour
-- ---------------------------------------------------------------------------
select i.event_id as big_reject
from private.ingest_webhook(
    tests.token_for(7002), null, 'not json ' || repeat('x', 65000), 'body is not valid JSON', 0, 1, 3
) as i \gset
select results_eq(
    format(
        $$ select length(raw_body), raw_body_bytes, raw_body_sha256, status from app.webhook_events where id = %s $$,
        :'big_reject'
    ),
    format(
        $$ values (2048, 65009, %L, 'rejected') $$,
        encode(sha256(convert_to('not json ' || repeat('x', 65000), 'UTF8')), 'hex')
    ),
    'a rejected body keeps its first 2,048 characters, its length and its sha256'
);
select is(
    (
        select outcome || ':' || coalesce(event_id::text, 'null')
        from private.ingest_webhook(
            tests.token_for(7002), null, 'not json ' || repeat('x', 65000), 'body is not valid JSON', 0, 1, 3
        )
    ),
    'rejected:' || :'big_reject',
    'the same bad body again is a duplicate of the stored one'
);
select is(
    (select duplicate_count from app.webhook_events where id = :'big_reject'),
    1,
    'and is counted on it'
);
select i.event_id as big_payload_reject
from private.ingest_webhook(
    tests.token_for(7002),
    jsonb_build_object('eventType', 'PaymentSuccess', 'merchantId', '7002', 'note', repeat('y', 10000)),
    '{"eventType": "PaymentSuccess", "merchantId": "7002", "note": "' || repeat('y', 10000) || '"}',
    'id (payment id) is required for PaymentSuccess', 0, 1, 3
) as i \gset
select results_eq(
    format($$ select payload is null, length(raw_body) from app.webhook_events where id = %s $$, :'big_payload_reject'),
    $$ values (true, 2048) $$,
    'a payload over 4 KB is not stored, only the first 2,048 characters of its body'
);
select results_eq(
    $$
        select i.outcome, i.event_id is null
        from generate_series(1, 3) as n
        cross join lateral private.ingest_webhook(
            tests.token_for(7002), null, 'bad body number ' || n, 'body is not valid JSON', 0, 1, 3
        ) as i
    $$,
    $$ values ('rejected', false), ('rejected', true), ('rejected', true) $$,
    'at most 3 (the cap) new rejected events of an account an hour are stored'
);
select results_eq(
    format(
        $$ select stored, not_stored from app.webhook_reject_counts where merchant_account_id = %L $$,
        :'other_account_id'
    ),
    $$ values (3, 2) $$,
    'the rejects beyond the cap are counted'
);
select is(
    (
        select count(*)::integer from app.webhook_events
        where merchant_account_id = :'other_account_id' and status = 'rejected'
    ),
    3,
    'and not stored'
);

-- ---------------------------------------------------------------------------
-- 6. ids that could be card numbers; client values in reasons
-- ---------------------------------------------------------------------------
select
    i.outcome as card_merchant_outcome,
    i.event_id as card_merchant_event
from private.ingest_webhook(
    tests.token_for(7001), '{"eventType": "PaymentSuccess", "merchantId": "4111111111111111", "id": "9"}'
) as i \gset
select results_eq(
    format($$ select %L, reject_reason from app.webhook_events where id = %s $$,
        :'card_merchant_outcome', :'card_merchant_event'),
    $$ values ('merchant_mismatch', 'merchantId is not an MX merchant id (1 to 12 digits)') $$,
    'a reject reason never echoes a merchantId that could be a card number'
);
select i.event_id as long_type_event
from private.ingest_webhook(
    tests.token_for(7001), jsonb_build_object('eventType', repeat('E', 65), 'merchantId', '7001')
) as i \gset
select is(
    (select reject_reason from app.webhook_events where id = :'long_type_event'),
    'eventType is longer than 64 characters',
    'an eventType over 64 characters is rejected'
);

-- ---------------------------------------------------------------------------
-- 5. dead events are pruned after the retention; their dead letters stay
-- ---------------------------------------------------------------------------
select tests.receive_payment_event(7001, 8001) as dead_event \gset
select tests.claim_event(:'dead_event') as dead_msg \gset
select private.dead_letter_ingest_event(:'dead_msg', :'dead_event', 'MX says 404');
update app.webhook_events set received_at = now() - interval '40 days' where id = :'dead_event';
select tests.receive_payment_event(7001, 8002) as recent_dead_event \gset
select tests.claim_event(:'recent_dead_event') as recent_dead_msg \gset
select private.dead_letter_ingest_event(:'recent_dead_msg', :'recent_dead_event', 'MX says 404');
select ok(
    (select webhook_events >= 1 from private.prune_retention(30, 7, 5000)),
    'prune_retention deletes old dead events'
);
select ok(
    not exists (select from app.webhook_events where id = :'dead_event'),
    'the dead event older than the retention is gone'
);
select ok(
    exists (select from app.webhook_events where id = :'recent_dead_event' and status = 'dead'),
    'a recent dead event stays'
);
select results_eq(
    format(
        $$ select (message ->> 'mx_merchant_id')::bigint, (message ->> 'payment_id')::bigint, message ->> 'reason'
        from pgmq.q_mx_ingest_dlq where (message ->> 'event_id')::bigint = %s $$,
        :'dead_event'
    ),
    $$ values (7001::bigint, 8001::bigint, 'MX says 404') $$,
    'its dead letter stays, with the merchant and payment a replay (backfill) needs'
);
select ok(
    (
        select count(*) = 0 from app.webhook_token_buckets as b
        where b.updated_at < now() - interval '1 day'
    ),
    'idle rate-limit buckets are pruned too'
);

-- ---------------------------------------------------------------------------
-- 7. CSV cells a spreadsheet would run
-- ---------------------------------------------------------------------------
select is(api.csv_cell('=HYPERLINK("http://x.test","Pay")'), '"''=HYPERLINK(""http://x.test"",""Pay"")"',
    'a cell starting with = gets an apostrophe (and is quoted for its quotes)');
select is(api.csv_cell('+1 555'), '''+1 555', 'a cell starting with + is neutralised');
select is(api.csv_cell('-2+3'), '''-2+3', 'a cell starting with - is neutralised');
select is(api.csv_cell('@SUM(A1)'), '''@SUM(A1)', 'a cell starting with @ is neutralised');
select is(api.csv_cell(e'\t=1'), e'''\t=1', 'a cell starting with a tab is neutralised');
select is(api.csv_cell(e'\r=1'), e'"''\r=1"', 'a cell starting with a carriage return is neutralised (and quoted)');
select is(api.csv_cell('Jane Doe'), 'Jane Doe', 'a plain cell is unchanged');
select is(api.csv_cell('Doe, Jane'), '"Doe, Jane"', 'a comma is quoted');
select is(api.csv_cell(null), '', 'null is empty');

select tests.create_user('csv-staff@example.test') as csv_staff \gset
select tests.add_member(:'practice_id', :'csv_staff', 'staff');
insert into app.patients (practice_id, name) values (:'practice_id', '=cmd|'' /C calc''!A0')
returning id as formula_patient \gset
insert into app.memberships (practice_id, patient_id, category_id, status, status_source, started_on, amount, billing_interval)
values (
    :'practice_id', :'formula_patient', tests.category_id(:'practice_id', 'TRT'), 'active', 'payment', '2026-01-01',
    100, 'monthly'
);
select tests.authenticate_as(:'csv_staff');
select is(
    split_part(api.export_memberships_csv(:'practice_id'), e'\r\n', 2),
    '''=cmd|'' /C calc''!A0,TRT,active,2026-01-01,,,100.00,monthly,,false,,,',
    'the membership export neutralises a patient name a spreadsheet would run'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- 2. a role only for a confirmed or invited address
-- ---------------------------------------------------------------------------
select tests.create_user('squatter@example.test') as squatter \gset
select throws_ok(
    format($$ select private.set_practice_member('edge-clinic', %L, 'owner') $$, :'squatter'),
    '42501', null,
    'an account nobody confirmed or invited gets no role'
);
update auth.users set email_confirmed_at = now() where id = :'squatter';
select is(
    private.set_practice_member('edge-clinic', :'squatter', 'staff'),
    'added',
    'once its address is confirmed, it does'
);
insert into auth.users (email, invited_at) values ('invited@example.test', now()) returning id as invited \gset
select is(
    private.set_practice_member('edge-clinic', :'invited', 'admin'),
    'added',
    'an invited account gets its role before accepting (the invitation went to the address)'
);

select * from finish();
rollback;
