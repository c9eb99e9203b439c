-- Issue 12, item 11: MX data the project does not hold never dead-letters an event. A
-- reference is kept as data and linked if and when the record arrives; an id of 0 or ""
-- means none. (The worker's side, 404s included, is tested end to end in
-- tests/integration/test_unheld_mx_records.py.)
begin;
\ir _helpers.psql

select plan(14);

select tests.create_practice('Ref Clinic', 'ref-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 5001) as account_id \gset
select tests.map_product(:'practice_id', 'Testosterone', 'TRT');

-- ---------------------------------------------------------------------------
-- A refund whose sale was never stored (and MX no longer serves it)
-- ---------------------------------------------------------------------------
select lives_ok(
    $$
        select tests.process_payment(
            5001,
            tests.payment_json(51002, 5001, '2026-02-01 10:00+00', p_type => 'Return', p_source => 'QuickPay')
            || '{"original_id": 51001}'::jsonb,
            p_event_type => 'RefundCreated'
        )
    $$,
    'a refund of a sale the project never stored is applied'
);
select results_eq(
    $$ select original_payment_id, mx_original_id from app.payments where id = 51002 $$,
    $$ values (null::bigint, 51001::bigint) $$,
    'the refund keeps the sale''s id as data, unlinked'
);
select is(
    (select status from app.webhook_events where payment_id = 51002),
    'processed',
    'its event is processed'
);

-- the sale arrives later (a backfill, a replay): the refund links to it
select tests.process_payment(
    5001,
    tests.payment_json(51001, 5001, '2026-01-31 10:00+00', p_customer_name => 'Pat Patient'),
    tests.invoice_json(61001, 801, 'Pat Patient', array['Testosterone'])
);
select is(
    (select original_payment_id from app.payments where id = 51002),
    51001::bigint,
    'the refund links to its sale when the sale arrives'
);

-- ---------------------------------------------------------------------------
-- Ids MX writes as 0 or "" to mean none
-- ---------------------------------------------------------------------------
select lives_ok(
    $$
        select tests.process_payment(
            5001,
            tests.payment_json(51003, 5001, '2026-02-02 10:00+00')
            || '{"original_id": 0, "invoice_ids": [0, "", null]}'::jsonb
        )
    $$,
    'original id 0 and invoice ids 0, "" and null are applied as none'
);
select results_eq(
    $$ select original_payment_id, mx_original_id, mx_invoice_ids from app.payments where id = 51003 $$,
    $$ values (null::bigint, null::bigint, '{}'::bigint []) $$,
    'no reference is recorded for them'
);
select lives_ok(
    $$
        select tests.process_payment(
            5001,
            tests.payment_json(51004, 5001, '2026-02-03 10:00+00') || '{"original_id": ""}'::jsonb
        )
    $$,
    'an original id of "" is none too'
);
select lives_ok(
    $$
        select tests.process_payment(
            5001,
            tests.payment_json(51005, 5001, '2026-02-04 10:00+00', p_customer_name => 'Zero Customer'),
            tests.invoice_json(61005, 0, 'Zero Customer', array['Testosterone'])
        )
    $$,
    'an invoice whose customer id is 0 is applied'
);
select results_eq(
    $$
        select pa.mx_customer_id, pa.name
        from app.invoices as i inner join app.patients as pa on pa.id = i.patient_id
        where i.id = 61005
    $$,
    $$ values (null::bigint, 'Zero Customer'::text) $$,
    'customer id 0 means none: the patient is known by name'
);
select is(private.mx_id('{"id": " 0 "}', 'id'), null, 'private.mx_id: " 0 " is none');
select is(private.mx_id('{"id": "42"}', 'id'), 42::bigint, 'private.mx_id: "42" is 42');

-- ---------------------------------------------------------------------------
-- An invoice MX answered 404 for: the payment is applied, the invoice linked when it arrives
-- ---------------------------------------------------------------------------
select lives_ok(
    $$
        select tests.process_payment(
            5001,
            tests.payment_json(51006, 5001, '2026-02-05 10:00+00', p_customer_name => 'Pat Patient')
            || '{"invoice_ids": [61006]}'::jsonb
        )
    $$,
    'a payment whose invoice was not fetched is applied'
);
select results_eq(
    $$ select mx_invoice_ids from app.payments where id = 51006 $$,
    $$ values ('{61006}'::bigint []) $$,
    'it keeps the invoice id as data'
);
-- the invoice arrives with a later payment that names it too
select tests.process_payment(
    5001,
    tests.payment_json(51007, 5001, '2026-02-06 10:00+00', p_customer_name => 'Pat Patient')
    || '{"invoice_ids": [61006]}'::jsonb,
    tests.invoice_json(61006, 801, 'Pat Patient', array['Testosterone'])
);
select results_eq(
    $$ select payment_id from app.payment_invoices where invoice_id = 61006 order by payment_id $$,
    array[51006::bigint, 51007::bigint],
    'when the invoice arrives, both payments that named it are linked to it'
);

select * from finish();
rollback;
