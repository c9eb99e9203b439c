-- Issue 12, item 3: a merchant account moved to another practice must not mix tenants.
-- The rule: an account with stored history never changes practice (refused, every path); an
-- account without history may. Behind the rule, the upserts refuse a stored row of another
-- practice instead of rewriting it, so even an account moved behind the rule's back (here:
-- with triggers off) cannot carry the old practice's invoice lines to the new one.
begin;
\ir _helpers.psql

select plan(12);

select tests.create_practice('Old Clinic', 'old-clinic') as practice_a \gset
select tests.create_practice('New Clinic', 'new-clinic') as practice_b \gset
select tests.create_user('owner-old@example.test') as owner_a \gset
select tests.create_user('owner-new@example.test') as owner_b \gset
select tests.add_member(:'practice_a', :'owner_a', 'owner');
select tests.add_member(:'practice_b', :'owner_b', 'owner');
select tests.create_merchant_account(:'practice_a', 3001) as account_a \gset
select tests.create_merchant_account(:'practice_b', 3002) as account_b \gset

-- history: a sale of practice A with an invoice of two lines; B has the same patient name
select tests.process_payment(
    3001,
    tests.payment_json(31001, 3001, '2026-01-05 10:00+00', p_customer_name => 'Pat Shared'),
    tests.invoice_json(41001, 701, 'Pat Shared', array['Testosterone', 'Semaglutide'])
);
select tests.process_payment(
    3002,
    tests.payment_json(32001, 3002, '2026-01-06 10:00+00', p_customer_name => 'Pat Shared'),
    tests.invoice_json(42001, 701, 'Pat Shared', array['BPC-157'])
);

-- ---------------------------------------------------------------------------
-- The rule, on every path
-- ---------------------------------------------------------------------------
select throws_ok(
    format($$ select private.update_merchant_account(3001, null, null, %L) $$, :'practice_b'),
    '55000', null,
    'merchant update --practice of an account with history is refused'
);
select throws_ok(
    format(
        $$ select private.upsert_merchant_account(%L, 3001, 'Moved', 'sandbox', null, null) $$, :'practice_b'
    ),
    '55000', null,
    'merchant add of a known MX merchant id under another practice is refused too'
);
select throws_ok(
    format($$ update app.merchant_accounts set practice_id = %L where mx_merchant_id = 3001 $$, :'practice_b'),
    '55000', null,
    'and so is a direct update'
);
select is(
    (select practice_id from app.merchant_accounts where mx_merchant_id = 3001),
    :'practice_a'::uuid,
    'the account stays with its practice'
);

select private.upsert_merchant_account(:'practice_a', 3003, 'No history yet', 'sandbox', null, null);
select lives_ok(
    format($$ select private.update_merchant_account(3003, null, null, %L) $$, :'practice_b'),
    'an account without history may still move (attached to the wrong practice, noticed early)'
);
select is(
    (select practice_id from app.merchant_accounts where mx_merchant_id = 3003),
    :'practice_b'::uuid,
    'and it did'
);

-- ---------------------------------------------------------------------------
-- Behind the rule: an account moved with triggers off, then an event of the old history
-- replayed through the real pipeline
-- ---------------------------------------------------------------------------
set local session_replication_role = replica;
update app.merchant_accounts set practice_id = :'practice_b' where mx_merchant_id = 3001;
set local session_replication_role = origin;

select throws_ok(
    $$
        select tests.process_payment(
            3001,
            tests.payment_json(31001, 3001, '2026-01-05 10:00+00', p_customer_name => 'Pat Shared'),
            tests.invoice_json(41001, 701, 'Pat Shared', array['Testosterone', 'Semaglutide']),
            p_event_type => 'PaymentFail'
        )
    $$,
    '23514', null,
    'replaying the old practice''s payment after the move is refused, not applied to the new practice'
);

select results_eq(
    $$ select distinct practice_id from app.invoice_lines where invoice_id = 41001 $$,
    array[:'practice_a'::uuid],
    'the old invoice''s lines stay in the old practice'
);
select results_eq(
    $$
        select distinct pa.practice_id
        from app.payments as p inner join app.patients as pa on pa.id = p.patient_id
        where p.id = 31001
    $$,
    array[:'practice_a'::uuid],
    'the old payment''s patient is still the old practice''s'
);

select tests.authenticate_as(:'owner_b');
select is_empty(
    $$ select 1 from app.invoice_lines where invoice_id = 41001 $$,
    'the new practice''s owner reads none of the old practice''s invoice lines'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- The schema holds the rule too
-- ---------------------------------------------------------------------------
select throws_ok(
    format(
        $$ update app.invoice_lines set practice_id = %L where invoice_id = 41001 $$, :'practice_b'
    ),
    '23503', null,
    'an invoice line cannot belong to another practice than its invoice'
);
select throws_ok(
    format(
        $$
            update app.payments set patient_id = (
                select id from app.patients where practice_id = %L limit 1
            ) where id = 31001
        $$,
        :'practice_b'
    ),
    '23503', null,
    'a payment cannot point at another practice''s patient'
);

select * from finish();
rollback;
