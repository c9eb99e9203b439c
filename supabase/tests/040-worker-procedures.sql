-- The worker's procedures: claim, apply, ordering of late fetches, retry, dead letter,
-- redelivery of a finished event.
begin;
\ir _helpers.psql

select plan(40);

select tests.create_practice('Worker Clinic', 'worker-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 1001) as account_id \gset
select tests.map_product(:'practice_id', 'Testosterone', 'TRT');
select tests.queue_length('mx_ingest') as queue_before \gset
select count(*) as archived_before from pgmq.a_mx_ingest \gset

-- ---------------------------------------------------------------------------
-- claim
-- ---------------------------------------------------------------------------
select tests.receive_payment_event(1001, 7001) as event_1 \gset
select msg_id as msg_1 from app.webhook_events where id = :'event_1' \gset

select results_eq(
    $$ select msg_id, event_id, attempts, event_type, payment_id, merchant_account_id, mx_merchant_id
    from private.claim_ingest_events(10, 30) $$,
    format(
        $$ values (%s::bigint, %s::bigint, 1, 'PaymentSuccess', 7001::bigint, %L::uuid, 1001::bigint) $$,
        :'msg_1', :'event_1', :'account_id'
    ),
    'claim returns the event with its payment, account and first attempt'
);
select is_empty(
    $$ select * from private.claim_ingest_events(10, 30) $$,
    'a claimed message is hidden from the next claim'
);
select private.retry_ingest_event(:'msg_1', :'event_1', 'timeout', 0);
select is(
    (select attempts from private.claim_ingest_events(10, 30) where event_id = :'event_1'),
    2,
    'claiming again counts a second attempt'
);

-- ---------------------------------------------------------------------------
-- apply: payment, invoice and every line, patient, memberships, processed, archived
-- ---------------------------------------------------------------------------
select private.apply_payment_event(
    :'msg_1', :'event_1', '2026-02-01 12:00+00',
    tests.payment_json(7001, 1001, '2026-02-01 11:00+00', 'Approved', 'Sale', 'Recurring', 150.00, 'Paula Patient'),
    jsonb_build_array(tests.invoice_json(8001, 901, 'Paula Patient', array['Testosterone', 'Semaglutide'], 75.00))
) as apply_1 \gset

select is(
    :'apply_1'::jsonb - 'patient_id',
    '{"outcome": "processed", "payment_id": 7001, "invoices": 1, "memberships": 2}'::jsonb,
    'apply reports the payment, its invoice and two memberships'
);
select results_eq(
    $$ select p.status, p.type, p.source, p.amount, p.card_last4, p.fetched_at, p.source_event_id, pt.mx_customer_id,
        pt.name
    from app.payments as p inner join app.patients as pt on p.patient_id = pt.id where p.id = 7001 $$,
    format(
        $$ values ('Approved', 'Sale', 'Recurring', 150.00::numeric(12, 2), '4242', '2026-02-01 12:00+00'::timestamptz,
            %s::bigint, 901::bigint, 'Paula Patient') $$,
        :'event_1'
    ),
    'the payment is stored with its patient (from the invoice''s customer) and its fetch'
);
select results_eq(
    $$ select i.total_amount, i.invoice_number, i.patient_id = p.patient_id
    from app.invoices as i inner join app.payments as p on p.id = 7001 where i.id = 8001 $$,
    $$ values (150.00::numeric(12, 2), 'INV-8001', true) $$,
    'the invoice is stored for the same patient'
);
select results_eq(
    $$ select l.line_no, l.product_name, c.name, l.total_amount, l.mx_purchase_id
    from app.invoice_lines as l inner join app.categories as c on l.category_id = c.id
    where l.invoice_id = 8001 order by l.line_no $$,
    $$ values (1, 'Testosterone', 'TRT', 75.00::numeric(12, 2), 800101::bigint),
        (2, 'Semaglutide', 'Uncategorized', 75.00::numeric(12, 2), 800102::bigint) $$,
    'every line is stored, a known product in its programme, a new one Uncategorized'
);
select is(
    (select count(*) from app.payment_invoices where payment_id = 7001 and invoice_id = 8001),
    1::bigint,
    'the payment is linked to its invoice'
);
select results_eq(
    $$ select c.name, m.status, m.amount, m.product_names from app.memberships as m
    inner join app.categories as c on m.category_id = c.id order by c.name $$,
    $$ values ('TRT', 'active', 75.00::numeric(12, 2), array['Testosterone']),
        ('Uncategorized', 'active', 75.00::numeric(12, 2), array['Semaglutide']) $$,
    'one active membership per programme the payment paid'
);
select results_eq(
    format($$ select status, processed_at is not null, last_error from app.webhook_events where id = %s $$, :'event_1'),
    $$ values ('processed', true, null::text) $$,
    'the event is processed and its last error cleared'
);
select results_eq(
    format(
        $$ select (select count(*) from pgmq.q_mx_ingest where msg_id = %1$s),
            (select count(*) from pgmq.a_mx_ingest where msg_id = %1$s) $$,
        :'msg_1'
    ),
    $$ values (0::bigint, 1::bigint) $$,
    'the message is archived'
);

-- ---------------------------------------------------------------------------
-- Ordering: an older fetch never overwrites a newer one; same fetch time, higher event wins
-- ---------------------------------------------------------------------------
select tests.receive_payment_event(1001, 7001, 'PaymentFail') as event_2 \gset
select tests.receive_payment_event(1001, 7001, 'RefundCreated') as event_3 \gset
select
    max(c.msg_id) filter (where c.event_id = :'event_2') as msg_2,
    max(c.msg_id) filter (where c.event_id = :'event_3') as msg_3
from private.claim_ingest_events(100, 30) as c \gset

-- newer fetch: settled, and the invoice now has one line
select private.apply_payment_event(
    :'msg_2', :'event_2', '2026-02-03 12:00+00',
    tests.payment_json(7001, 1001, '2026-02-01 11:00+00', 'Settled', 'Sale', 'Recurring', 150.00, 'Paula Patient'),
    jsonb_build_array(tests.invoice_json(8001, 901, 'Paula Patient', array['Testosterone'], 150.00))
);
-- older fetch arriving late: approved, two lines
select private.apply_payment_event(
    :'msg_3', :'event_3', '2026-02-02 12:00+00',
    tests.payment_json(7001, 1001, '2026-02-01 11:00+00', 'Approved', 'Sale', 'Recurring', 999.00, 'Paula Patient'),
    jsonb_build_array(tests.invoice_json(8001, 901, 'Paula Patient', array['Testosterone', 'Semaglutide'], 75.00))
);

select results_eq(
    $$ select status, amount, fetched_at from app.payments where id = 7001 $$,
    $$ values ('Settled', 150.00::numeric(12, 2), '2026-02-03 12:00+00'::timestamptz) $$,
    'an older fetch applied after a newer one leaves the payment as the newer fetch left it'
);
select results_eq(
    $$ select i.total_amount, (select count(*) from app.invoice_lines as l where l.invoice_id = i.id)
    from app.invoices as i where i.id = 8001 $$,
    $$ values (150.00::numeric(12, 2), 1::bigint) $$,
    'nor the invoice and its lines'
);
select is(
    (select status from app.webhook_events where id = :'event_3'),
    'processed',
    'the late event is still processed (nothing to apply is a success)'
);

-- same fetched_at, two events: the higher event id wins whatever the order of arrival
select tests.receive_payment_event(1001, 7002, 'PaymentSuccess') as event_low \gset
select tests.receive_payment_event(1001, 7002, 'PaymentFail') as event_high \gset
select
    max(c.msg_id) filter (where c.event_id = :'event_low') as msg_low,
    max(c.msg_id) filter (where c.event_id = :'event_high') as msg_high
from private.claim_ingest_events(100, 30) as c \gset
select private.apply_payment_event(
    :'msg_high', :'event_high', '2026-02-05 12:00+00',
    tests.payment_json(7002, 1001, '2026-02-05 11:00+00', 'Declined', 'Sale', 'Recurring')
);
select private.apply_payment_event(
    :'msg_low', :'event_low', '2026-02-05 12:00+00',
    tests.payment_json(7002, 1001, '2026-02-05 11:00+00', 'Approved', 'Sale', 'Recurring')
);
select results_eq(
    $$ select status, source_event_id from app.payments where id = 7002 $$,
    format($$ values ('Declined', %s::bigint) $$, :'event_high'),
    'same fetch time: the lower event id applied later does not overwrite the higher'
);

select tests.receive_payment_event(1001, 7003, 'PaymentSuccess') as event_low2 \gset
select tests.receive_payment_event(1001, 7003, 'PaymentFail') as event_high2 \gset
select
    max(c.msg_id) filter (where c.event_id = :'event_low2') as msg_low2,
    max(c.msg_id) filter (where c.event_id = :'event_high2') as msg_high2
from private.claim_ingest_events(100, 30) as c \gset
select private.apply_payment_event(
    :'msg_low2', :'event_low2', '2026-02-06 12:00+00',
    tests.payment_json(7003, 1001, '2026-02-06 11:00+00', 'Approved', 'Sale', 'Recurring')
);
select private.apply_payment_event(
    :'msg_high2', :'event_high2', '2026-02-06 12:00+00',
    tests.payment_json(7003, 1001, '2026-02-06 11:00+00', 'Declined', 'Sale', 'Recurring')
);
select results_eq(
    $$ select status, source_event_id from app.payments where id = 7003 $$,
    format($$ values ('Declined', %s::bigint) $$, :'event_high2'),
    'same fetch time: the higher event id applied later overwrites the lower'
);

-- ---------------------------------------------------------------------------
-- retry
-- ---------------------------------------------------------------------------
select tests.receive_payment_event(1001, 7004) as event_r \gset
select tests.claim_event(:'event_r') as msg_r \gset
select tests.queue_length('mx_ingest') as queue_at_retry \gset
select private.retry_ingest_event(:'msg_r', :'event_r', repeat('x', 3000), 120);

select results_eq(
    format($$ select status, length(last_error), attempts from app.webhook_events where id = %s $$, :'event_r'),
    $$ values ('retrying', 2000, 1) $$,
    'retry marks the event retrying with its (truncated) error; attempts are counted by claims only'
);
select results_eq(
    format(
        $$ select count(*), bool_and(vt > now() + interval '100 seconds') from pgmq.q_mx_ingest where msg_id = %s $$,
        :'msg_r'
    ),
    $$ values (1::bigint, true) $$,
    'retry keeps the message, hidden for the delay'
);
select is(tests.queue_length('mx_ingest'), :'queue_at_retry'::bigint, 'retry neither adds nor removes a message');
select is(
    (select count(*) from private.claim_ingest_events(10, 30) where event_id = :'event_r'),
    0::bigint,
    'the retried message is not claimable before its delay'
);
select private.extend_ingest_visibility(:'msg_r', 0);
select results_eq(
    format($$ select msg_id, attempts from private.claim_ingest_events(10, 30) where event_id = %s $$, :'event_r'),
    format($$ values (%s::bigint, 2) $$, :'msg_r'),
    'once visible again, the same message is claimed for a second attempt'
);

-- ---------------------------------------------------------------------------
-- dead letter
-- ---------------------------------------------------------------------------
select tests.queue_length('mx_ingest_dlq') as dlq_before \gset
select private.dead_letter_ingest_event(:'msg_r', :'event_r', 'payment not found', false);
select results_eq(
    format(
        $$ select status, last_error, processed_at is not null from app.webhook_events where id = %s $$,
        :'event_r'
    ),
    $$ values ('dead', 'payment not found', true) $$,
    'dead letter marks the event dead with its reason'
);
select results_eq(
    format(
        $$ select (select count(*) from pgmq.q_mx_ingest where msg_id = %1$s),
            (select count(*) from pgmq.a_mx_ingest where msg_id = %1$s) $$,
        :'msg_r'
    ),
    $$ values (0::bigint, 1::bigint) $$,
    'dead letter archives the ingest message'
);
select is(
    (select message from pgmq.q_mx_ingest_dlq order by msg_id desc limit 1),
    jsonb_build_object(
        'event_id', :'event_r'::bigint, 'reason', 'payment not found', 'attempts', 2,
        'mx_merchant_id', 1001, 'payment_id', 7004
    ),
    'dead letter sends the event, reason and attempts to mx_ingest_dlq'
);
select is(tests.queue_length('mx_ingest_dlq'), :'dlq_before'::bigint + 1, 'one dead-letter message');
select results_eq(
    format(
        $$ select credentials_failed_at, credentials_error from app.merchant_accounts where id = %L $$,
        :'account_id'
    ),
    $$ values (null::timestamptz, null::text) $$,
    'without the credentials flag the account is not marked'
);

select tests.receive_payment_event(1001, 7005) as event_c \gset
select tests.claim_event(:'event_c') as msg_c \gset
select private.dead_letter_ingest_event(:'msg_c', :'event_c', 'MX answered 401 Unauthorized', true);
select results_eq(
    format(
        $$ select credentials_failed_at is not null, credentials_error from app.merchant_accounts where id = %L $$,
        :'account_id'
    ),
    $$ values (true, 'MX answered 401 Unauthorized') $$,
    'with the credentials flag the account records the credential failure'
);
select is(
    (select status from app.webhook_events where id = :'event_c'),
    'dead',
    'the credential failure''s event is dead too'
);

-- dead-lettering a finished event changes nothing and sends nothing
select private.queue_send('mx_ingest', jsonb_build_object('event_id', :'event_1'::bigint)) as msg_again \gset
select tests.queue_length('mx_ingest_dlq') as dlq_mid \gset
select private.dead_letter_ingest_event(:'msg_again', :'event_1', 'late failure', false);
select results_eq(
    format($$ select status, last_error from app.webhook_events where id = %s $$, :'event_1'),
    $$ values ('processed', null::text) $$,
    'dead letter on a processed event leaves it processed'
);
select is(tests.queue_length('mx_ingest_dlq'), :'dlq_mid'::bigint, 'and sends nothing to the dead-letter queue');
select is(
    (select count(*) from pgmq.q_mx_ingest where msg_id = :'msg_again'),
    0::bigint,
    'but archives its message'
);

-- ---------------------------------------------------------------------------
-- apply on an already processed event (a redelivered message) only archives
-- ---------------------------------------------------------------------------
select private.queue_send('mx_ingest', jsonb_build_object('event_id', :'event_1'::bigint)) as msg_redelivered \gset
select count(*) as events_of_membership from app.membership_events \gset
select is(
    private.apply_payment_event(
        :'msg_redelivered', :'event_1', '2026-03-01 12:00+00',
        tests.payment_json(7001, 1001, '2026-02-01 11:00+00', 'Refunded', 'Sale', 'Recurring', 1.00)
    ),
    '{"outcome": "already_finished"}'::jsonb,
    'apply on a processed event answers already_finished'
);
select results_eq(
    $$ select status, amount, fetched_at from app.payments where id = 7001 $$,
    $$ values ('Settled', 150.00::numeric(12, 2), '2026-02-03 12:00+00'::timestamptz) $$,
    'and applies nothing, even a newer fetch'
);
select results_eq(
    format(
        $$ select (select count(*) from pgmq.q_mx_ingest where msg_id = %1$s),
            (select count(*) from pgmq.a_mx_ingest where msg_id = %1$s) $$,
        :'msg_redelivered'
    ),
    $$ values (0::bigint, 1::bigint) $$,
    'and archives the redelivered message'
);

-- a claim skips (and archives) a message whose event is already finished
select private.queue_send('mx_ingest', jsonb_build_object('event_id', :'event_1'::bigint)) as msg_stale \gset
select is_empty(
    format($$ select * from private.claim_ingest_events(10, 30) where msg_id = %s $$, :'msg_stale'),
    'claim does not hand out a message of a finished event'
);
select is(
    (select count(*) from pgmq.a_mx_ingest where msg_id = :'msg_stale'),
    1::bigint,
    'claim archives that message'
);

-- a payment of another merchant is refused
select tests.receive_payment_event(1001, 7006) as event_x \gset
select tests.claim_event(:'event_x') as msg_x \gset
select throws_ok(
    format(
        $$ select private.apply_payment_event(%s, %s, now(), tests.payment_json(7006, 2002, now())) $$,
        :'msg_x', :'event_x'
    ),
    '22023', null,
    'apply refuses a payment that belongs to another merchant'
);
select is(
    (select count(*) from app.payments where id = 7006),
    0::bigint,
    'and stores nothing of it'
);

-- the worker's role runs the whole cycle through its procedures
set local role mx_worker;
select is(
    (select count(*) from private.claim_ingest_events(10, 30)),
    0::bigint,
    'mx_worker can claim (nothing left to claim)'
);
select throws_ok(
    $$ select private.queue_send('mx_ingest', '{}') $$, '42501', null,
    'mx_worker cannot send to a queue directly'
);
reset role;

select * from finish();
rollback;
