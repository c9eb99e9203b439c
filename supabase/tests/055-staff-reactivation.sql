-- A staff reactivation overrides older evidence (a canceled contract, an old decline), but
-- ends when newer failure evidence arrives: the membership then shows past_due. Staff pause
-- and cancel keep holding over payments (050-membership-status.sql).
begin;
\ir _helpers.psql

select plan(6);

select tests.create_practice('Reactivation Clinic', 'reactivation-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 1055) as account_id \gset
select tests.map_product(:'practice_id', 'Testosterone', 'TRT');

create function tests.pay(p_payment_id bigint, p_created timestamptz, p_status text)
returns bigint
language sql
set search_path = ''
as $$
    select tests.process_payment(
        1055,
        tests.payment_json(p_payment_id, 1055, p_created, p_status, 'Sale', 'Recurring', 120.00, 'Rae Active'),
        tests.invoice_json(p_payment_id + 100000, 955, 'Rae Active', array['Testosterone'], 120.00)
    )
$$;

select tests.pay(1, '2026-01-01 09:00+00', 'Approved');
select tests.pay(2, '2026-02-01 09:00+00', 'Declined');
select id as membership_id from app.memberships \gset

-- MX canceled the contract, then staff reactivated the patient (decision after the change).
update app.memberships
set contract_status = 'Cancelled', contract_status_changed_at = '2026-02-05 09:00+00'
where id = :'membership_id';
select private.settle_membership_status(:'membership_id');
select is(
    (select status from app.memberships where id = :'membership_id'), 'canceled',
    'the canceled contract wins over the payments'
);

update app.memberships
set
    staff_status = 'active', staff_reason = 'patient called, paying again',
    staff_decided_at = '2026-02-10 09:00+00'
where id = :'membership_id';
select private.settle_membership_status(:'membership_id');
select results_eq(
    format($$ select status, status_source from app.memberships where id = %L $$, :'membership_id'),
    $$ values ('active', 'staff') $$,
    'a reactivation overrides the older canceled contract and the older decline'
);

select tests.pay(3, '2026-03-01 09:00+00', 'Approved');
select results_eq(
    format($$ select status, status_source from app.memberships where id = %L $$, :'membership_id'),
    $$ values ('active', 'staff') $$,
    'a newer successful payment leaves the reactivation in place'
);

select tests.pay(4, '2026-04-01 09:00+00', 'Declined');
select results_eq(
    format(
        $$ select status, status_source, status_changed_at from app.memberships where id = %L $$,
        :'membership_id'
    ),
    $$ values ('past_due', 'payment', '2026-04-01 09:00+00'::timestamptz) $$,
    'a recurring payment failing after the reactivation ends it: past_due, not the old cancel'
);
select results_eq(
    format(
        $$ select old_status, new_status, source from app.membership_events
        where membership_id = %L order by id desc limit 1 $$, :'membership_id'
    ),
    $$ values ('active', 'past_due', 'payment') $$,
    'the end of the reactivation is in the history'
);

-- A staff pause, by contrast, holds over a newer failure.
update app.memberships
set staff_status = 'paused', staff_reason = 'travelling', staff_decided_at = '2026-04-02 09:00+00'
where id = :'membership_id';
select tests.pay(5, '2026-05-01 09:00+00', 'Declined');
select is(
    (select status from app.memberships where id = :'membership_id'), 'paused',
    'a staff pause holds over a newer decline'
);

select * from finish();
rollback;
