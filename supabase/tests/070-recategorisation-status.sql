-- Recategorisation backfill (lines and memberships move, change log), staff decisions,
-- precedence and late events.
begin;
\ir _helpers.psql

select plan(30);

select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_user('admin-a@example.test') as admin_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('staff-b@example.test') as staff_b \gset
select tests.add_member(:'practice_a', :'admin_a', 'admin');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'staff_b', 'staff');
select tests.create_merchant_account(:'practice_a', 1001) as account_a \gset
select tests.map_product(:'practice_a', 'Testosterone', 'TRT');

-- Alice buys Semaglutide (suggested Weight Loss, stays Uncategorized); Bob buys Tirzepatide.
select tests.process_payment(
    1001, tests.payment_json(11001, 1001, '2026-01-05 10:00+00', p_customer_name => 'Alice A'),
    tests.invoice_json(21001, 501, 'Alice A', array['Semaglutide'])
);
select tests.process_payment(
    1001, tests.payment_json(11002, 1001, '2026-01-06 10:00+00', p_customer_name => 'Bob A'),
    tests.invoice_json(21002, 502, 'Bob A', array['Tirzepatide'])
);
select id as sema from app.products where practice_id = :'practice_a' and name = 'Semaglutide' \gset
select id as tirz from app.products where practice_id = :'practice_a' and name = 'Tirzepatide' \gset
select id as alice from app.patients where name = 'Alice A' \gset
select id as bob from app.patients where name = 'Bob A' \gset
select id as alice_unc from app.memberships where patient_id = :'alice' \gset
select id as bob_unc from app.memberships where patient_id = :'bob' \gset

select is(
    (select category_id from app.memberships where id = :'alice_unc'),
    tests.category_id(:'practice_a', 'Uncategorized'), 'fixture: an unconfirmed product builds an Uncategorized membership'
);

-- staff fill in workflow on Alice's membership and pause Bob's
select tests.authenticate_as(:'staff_a');
select api.update_membership_workflow(:'alice_unc', '{"notes": "call back", "referral_source": "online"}');
select is(
    api.set_membership_status(:'bob_unc', 'paused', 'travelling'), 'paused', 'staff pause a membership'
);
select throws_ok(
    format($$ select api.confirm_product_suggestion(%L) $$, :'sema'), '42501', null,
    'staff cannot confirm a suggestion'
);
select throws_ok(
    format($$ select api.set_product_category(%L, %L) $$, :'sema', tests.category_id(:'practice_a', 'TRT')),
    '42501', null, 'staff cannot set a product''s programme'
);

-- the admin confirms both suggestions
select tests.authenticate_as(:'admin_a');
select is(
    api.confirm_product_suggestion(:'sema'),
    '{"changed": true, "lines_moved": 1, "memberships_kept": 0, "memberships_rebuilt": 1, "memberships_removed": 1}'::jsonb,
    'confirming moves one line, rebuilds one membership, removes the emptied one'
);
select is(
    (api.set_product_category(:'tirz', tests.category_id(:'practice_a', 'Weight Loss'))) ->> 'memberships_kept', '1',
    'a membership with a staff decision is kept'
);
select tests.clear_authentication();

select is(
    (select category_id from app.invoice_lines where invoice_id = 21001),
    tests.category_id(:'practice_a', 'Weight Loss'), 'the invoice line moved'
);
select is(
    (select category_confirmed from app.products where id = :'sema'), true, 'the product is confirmed'
);
select results_eq(
    format($$ select status, notes, referral_source from app.memberships where patient_id = %L
        and category_id = %L $$, :'alice', tests.category_id(:'practice_a', 'Weight Loss')),
    $$ values ('active'::text, 'call back'::text, 'online'::text) $$,
    'Alice''s Weight Loss membership is active and carries the workflow fields over'
);
select is(
    (select count(*) from app.memberships where id = :'alice_unc'), 0::bigint,
    'the emptied membership without contract or staff data is deleted'
);
select results_eq(
    format($$ select from_category_id, to_category_id, changed_by from app.product_category_changes
        where product_id = %L $$, :'sema'),
    format(
        $$ values (%L::uuid, %L::uuid, %L::uuid) $$, tests.category_id(:'practice_a', 'Uncategorized'),
        tests.category_id(:'practice_a', 'Weight Loss'), :'admin_a'
    ),
    'the change log records from, to and who'
);
select results_eq(
    format($$ select status, payment_status from app.memberships where id = %L $$, :'bob_unc'),
    $$ values ('paused'::text, null::text) $$,
    'the kept membership loses its payment evidence and keeps the staff decision'
);
select is(
    (
        select status
        from app.memberships where patient_id = :'bob'
            and category_id = tests.category_id(:'practice_a', 'Weight Loss')
    ),
    'active', 'Bob''s Weight Loss membership is built from his payment'
);
select is(
    (select count(*) from app.workflow_audit where row_id = :'alice_unc'), 1::bigint,
    'the staff workflow edit was audited'
);

-- staff decisions on Adam's TRT membership
select tests.process_payment(
    1001, tests.payment_json(11003, 1001, '2026-01-06 10:00+00', p_customer_name => 'Adam A'),
    tests.invoice_json(21003, 503, 'Adam A', array['Testosterone'])
);
select m.id as adam from app.memberships as m inner join app.patients as p on m.patient_id = p.id
where p.name = 'Adam A' \gset

select tests.authenticate_as(:'staff_a');
select throws_ok(
    format($$ select api.set_membership_status(%L, 'paused', '  ') $$, :'adam'), '22023', null,
    'a staff decision needs a reason'
);
select throws_ok(
    format($$ select api.set_membership_status(%L, 'past_due', 'why') $$, :'adam'), '22023', null,
    'staff cannot set past_due'
);
select is(api.set_membership_status(:'adam', 'paused', 'on holiday'), 'paused', 'pause');
select is(api.set_membership_status(:'adam', 'active', 'back'), 'active', 'reactivate');
select is(api.set_membership_status(:'adam', 'canceled', 'moved away'), 'canceled', 'cancel');
select tests.authenticate_as(:'staff_b');
select throws_ok(
    format($$ select api.set_membership_status(%L, 'active', 'hijack') $$, :'adam'), 'P0002', null,
    'a member of B cannot decide on A''s membership'
);
select tests.authenticate_as_anon();
select throws_ok(
    format($$ select api.set_membership_status(%L, 'active', 'x') $$, :'adam'), '42501', null, 'anon is denied'
);
select tests.clear_authentication();

select results_eq(
    format($$ select old_status, new_status, source, reason, actor_user_id from app.membership_events
        where membership_id = %L and source = 'staff' order by id $$, :'adam'),
    format(
        $$ values ('active'::text, 'paused'::text, 'staff'::text, 'on holiday'::text, %1$L::uuid),
        ('paused', 'active', 'staff', 'back', %1$L), ('active', 'canceled', 'staff', 'moved away', %1$L) $$,
        :'staff_a'
    ),
    'each staff decision is in the history with old, new, reason and actor'
);
select isnt((select canceled_at from app.memberships where id = :'adam'), null, 'canceled_at is set');

-- precedence: a contract change older than the decision does not win; a newer one does
update app.memberships set contract_status = 'Active', contract_status_changed_at = '2026-01-01'
where id = :'adam';
select is(private.settle_membership_status(:'adam'), 'canceled', 'an older contract status loses to staff');
update app.memberships set contract_status = 'Active', contract_status_changed_at = clock_timestamp()
where id = :'adam';
select is(private.settle_membership_status(:'adam'), 'active', 'a newer contract status wins over staff');
update app.memberships set contract_status = 'Inactive', contract_status_changed_at = clock_timestamp()
where id = :'adam';
select is(private.settle_membership_status(:'adam'), 'paused', 'contract Inactive beats payment evidence');
update app.memberships set contract_status = 'Active', contract_status_changed_at = clock_timestamp()
where id = :'adam';
select is(private.settle_membership_status(:'adam'), 'active', 'payment evidence (active) then contract Active');

-- payments: a late decline dated before the newest success does not win; a newer one does
select tests.process_payment(
    1001, tests.payment_json(11004, 1001, '2026-01-01 10:00+00', 'Declined', p_customer_name => 'Adam A'),
    tests.invoice_json(21004, 503, 'Adam A', array['Testosterone']), p_event_type => 'PaymentFail'
);
select is((select status from app.memberships where id = :'adam'), 'active', 'a late, older decline changes nothing');
select tests.process_payment(
    1001, tests.payment_json(11005, 1001, '2026-02-06 10:00+00', 'Declined', p_customer_name => 'Adam A'),
    tests.invoice_json(21005, 503, 'Adam A', array['Testosterone']), p_event_type => 'PaymentFail'
);
select is((select status from app.memberships where id = :'adam'), 'past_due', 'a newer failed recurring payment: past_due');
select tests.process_payment(
    1001, tests.payment_json(11006, 1001, '2026-02-08 10:00+00', p_customer_name => 'Adam A'),
    tests.invoice_json(21006, 503, 'Adam A', array['Testosterone'])
);
select is((select status from app.memberships where id = :'adam'), 'active', 'a newer success: active again');

select * from finish();
rollback;
