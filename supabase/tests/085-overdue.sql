-- The overdue sweep: last payment + interval (or next billing date) + grace days, then past_due
-- with source 'system'; idempotent; a payment recorded afterwards wins.
begin;
\ir _helpers.psql

select plan(7);

select tests.create_practice('Clinic O', 'clinic-o') as po \gset
select tests.create_merchant_account(:'po', 5001);
select tests.map_product(:'po', 'Testosterone', 'TRT');
-- Carol paid 2026-03-01 (monthly): due 2026-04-01, grace 7 days -> overdue from 2026-04-09 00:00 UTC
select tests.process_payment(
    5001, tests.payment_json(15001, 5001, '2026-03-01 10:00+00', p_customer_name => 'Carol'),
    tests.invoice_json(25001, 901, 'Carol', array['Testosterone'])
);
select m.id as carol from app.memberships as m inner join app.patients as p on m.patient_id = p.id
where p.name = 'Carol' \gset

select is(private.mark_overdue_memberships('2026-04-08 23:59+00'), 0, 'within the grace period: nothing changes');
select is(private.mark_overdue_memberships('2026-04-09 00:00+00'), 1, 'after due date + grace: one changed');
select results_eq(
    format($$ select status, status_source from app.memberships where id = %L $$, :'carol'),
    $$ values ('past_due'::text, 'system'::text) $$, 'the membership is past_due by the system'
);
select results_eq(
    format($$ select old_status, new_status, source, evidence_at from app.membership_events
        where membership_id = %L order by id desc limit 1 $$, :'carol'),
    $$ values ('active'::text, 'past_due'::text, 'system'::text, '2026-04-09 00:00+00'::timestamptz) $$,
    'the change is in the history with source system'
);
select is(private.mark_overdue_memberships('2026-04-20 00:00+00'), 0, 'running again changes nothing');
-- a payment made on 03-31 that arrives only now supersedes the overdue evidence
select tests.process_payment(
    5001, tests.payment_json(15002, 5001, '2026-03-31 10:00+00', p_customer_name => 'Carol'),
    tests.invoice_json(25002, 901, 'Carol', array['Testosterone'])
);
select is((select status from app.memberships where id = :'carol'), 'active', 'a later-recorded payment wins');
update app.memberships set next_billing_on = '2026-06-01' where id = :'carol';
select is(
    private.mark_overdue_memberships('2026-06-08 12:00+00'), 0, 'the next billing date, when known, is used'
);

select * from finish();
rollback;
