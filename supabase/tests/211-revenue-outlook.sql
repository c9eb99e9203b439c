-- api.revenue_outlook: money collected in the past months (sales minus refunds, by programme)
-- beside the revenue expected in the coming ones (Active contracts; active memberships without
-- one), never counting a membership and its contract twice. Dates are relative to today.
begin;
\ir _helpers.psql

select plan(12);

select tests.create_practice('Clinic R', 'clinic-r') as pr \gset
select tests.create_practice('Clinic U', 'clinic-u') as pu \gset
update app.practices set timezone = 'UTC' where id in (:'pr', :'pu');
select tests.create_user('owner-r@example.test') as owner_r \gset
select tests.create_user('admin-r@example.test') as admin_r \gset
select tests.create_user('staff-r@example.test') as staff_r \gset
select tests.create_user('owner-u@example.test') as owner_u \gset
select tests.add_member(:'pr', :'owner_r', 'owner');
select tests.add_member(:'pr', :'admin_r', 'admin');
select tests.add_member(:'pr', :'staff_r', 'staff');
select tests.add_member(:'pu', :'owner_u', 'owner');
select tests.create_merchant_account(:'pr', 7201) as account_r \gset
select tests.map_product(:'pr', 'Testosterone', 'TRT');
select tests.map_product(:'pr', 'Semaglutide', 'Weight Loss');
select tests.category_id(:'pr', 'TRT') as trt \gset
select tests.category_id(:'pr', 'Weight Loss') as wl \gset
select
    date_trunc('month', now() at time zone 'UTC')::date as m0,
    (date_trunc('month', now() at time zone 'UTC') - interval '1 month')::date as m_1,
    (date_trunc('month', now() at time zone 'UTC') - interval '2 months')::date as m_2,
    (date_trunc('month', now() at time zone 'UTC') + interval '1 month')::date as m1,
    (date_trunc('month', now() at time zone 'UTC') + interval '2 months')::date as m2
\gset

create function tests.pay(
    p_id bigint, p_customer bigint, p_name text, p_at timestamptz, p_source text, p_product text, p_total numeric,
    p_status text default 'Approved'
)
returns bigint
language sql
set search_path = ''
as $$
    select tests.process_payment(
        7201, tests.payment_json(p_id, 7201, p_at, p_status, 'Sale', p_source, p_total, p_name),
        tests.invoice_json(p_id + 100000, p_customer, p_name, array[p_product], p_total),
        now(), case when p_status = 'Approved' then 'PaymentSuccess' else 'PaymentFail' end
    )
$$;

-- collected: TRT 100 two months ago and last month (Alice); Weight Loss last month: Wendy 80
-- (recurring) + Carl 80 (one-time) - Carl's refund 30 = 130; Dan's declined sale counts nothing
select tests.pay(22001, 921, 'Alice', :'m_2'::timestamptz + interval '4 days 10 hours', 'Recurring', 'Testosterone', 100);
select tests.pay(22002, 921, 'Alice', :'m_1'::timestamptz + interval '4 days 10 hours', 'Recurring', 'Testosterone', 100);
select tests.pay(22011, 922, 'Wendy', :'m_1'::timestamptz + interval '2 days 10 hours', 'Recurring', 'Semaglutide', 80);
select tests.pay(22021, 923, 'Carl', :'m_1'::timestamptz + interval '6 days 10 hours', 'QuickPay', 'Semaglutide', 80);
select tests.pay(22031, 924, 'Dan', :'m_1'::timestamptz + interval '9 days 10 hours', 'Recurring', 'Testosterone', 90, 'Declined');
select tests.process_payment(
    7201,
    jsonb_set(
        tests.payment_json(22022, 7201, :'m_1'::timestamptz + interval '8 days', 'Approved', 'Return', 'QuickPay', 30, 'Carl'),
        '{original_id}', '22021'
    ),
    null, now(), 'RefundCreated'
);

-- expected: Alice's membership bills 100 monthly from the 1st of next month; Wendy's membership
-- (80) is billed by an Active contract of 75 (the contract counts, once); an Active contract with
-- no membership (50: no programme); a Cancelled contract counts nothing
update app.memberships set next_billing_on = :'m1' where patient_id = (select id from app.patients where name = 'Alice' and practice_id = :'pr');
select private.start_sync_run(:'account_r', 'contracts') as run_r \gset
select private.apply_contract(
    :run_r, now(),
    jsonb_build_object(
        'id', 9401, 'merchant_id', 7201, 'customer_id', 922, 'customer_name', 'Wendy', 'interval', 'Monthly',
        'amount', '75.00', 'status', 'Active', 'start_date', :'m_1', 'next_bill_date', (:'m1'::date + 14)
    ),
    '[{"id": 22011, "status": "Approved"}]'
);
insert into app.contracts (id, practice_id, merchant_account_id, name, billing_interval, amount, status, next_bill_date, raw, fetched_at)
values
    (9402, :'pr', :'account_r', 'no membership', 'Monthly', 50, 'Active', :'m1'::date + 1, '{}', now()),
    (9403, :'pr', :'account_r', 'cancelled', 'Monthly', 1000, 'Cancelled', :'m1'::date + 1, '{}', now());

select is(
    (select contract_id from app.memberships where category_id = :'wl' and contract_id is not null), 9401::bigint,
    'fixture: Wendy''s membership is billed by contract 9401'
);

select tests.authenticate_as(:'owner_r');
select results_eq(
    format($$ select month_start, collected, expected, expected_charges
        from api.revenue_outlook(%L, 2, 3) where category_id = %L order by 1 $$, :'pr', :'trt'),
    format($$ values (%L::date, 100.00::numeric, 0.00::numeric, 0::bigint), (%L, 100.00, 0.00, 0),
        (%L, 0.00, 0.00, 0), (%L, 0.00, 100.00, 1), (%L, 0.00, 100.00, 1) $$,
        :'m_2', :'m_1', :'m0', :'m1', :'m2'),
    'TRT: Alice''s payments collected, then her monthly 100 expected from next month (declined sales count nothing)'
);
select results_eq(
    format($$ select month_start, collected, expected
        from api.revenue_outlook(%L, 2, 3) where category_id = %L and (collected <> 0 or expected <> 0) order by 1 $$,
        :'pr', :'wl'),
    format($$ values (%L::date, 130.00::numeric, 0.00::numeric), (%L, 0.00, 75.00), (%L, 0.00, 75.00) $$,
        :'m_1', :'m1', :'m2'),
    'Weight Loss: sales minus the refund collected; the contract''s 75 expected, not the membership''s 80 as well'
);
select results_eq(
    format($$ select month_start, category_name, expected
        from api.revenue_outlook(%L, 2, 3) where category_id is null and not is_total order by 1 $$, :'pr'),
    format($$ values (%L::date, 'No programme'::text, 0.00::numeric), (%L, 'No programme', 0.00),
        (%L, 'No programme', 0.00), (%L, 'No programme', 50.00), (%L, 'No programme', 50.00) $$,
        :'m_2', :'m_1', :'m0', :'m1', :'m2'),
    'an Active contract without a membership: expected under no programme; a Cancelled one: nothing'
);
select results_eq(
    format($$ select month_start, category_name, collected, expected, expected_charges
        from api.revenue_outlook(%L, 2, 3) where is_total order by 1 $$, :'pr'),
    format($$ values (%L::date, 'All'::text, 100.00::numeric, 0.00::numeric, 0::bigint), (%L, 'All', 230.00, 0.00, 0),
        (%L, 'All', 0.00, 0.00, 0), (%L, 'All', 0.00, 225.00, 3), (%L, 'All', 0.00, 225.00, 3) $$,
        :'m_2', :'m_1', :'m0', :'m1', :'m2'),
    'the total per month'
);

-- ---------------------------------------------------------------------------
-- Roles
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'admin_r');
select is(
    (select sum(expected) from api.revenue_outlook(:'pr', 0, 3) where is_total), 450.00::numeric,
    'an admin sees the outlook'
);
select tests.authenticate_as(:'staff_r');
select throws_ok(
    format($$ select * from api.revenue_outlook(%L) $$, :'pr'), '42501',
    'the revenue outlook is for the practice''s owners and admins', 'staff are refused'
);
select tests.authenticate_as(:'owner_u');
select is(
    (select count(*) from api.revenue_outlook(:'pr')), 0::bigint, 'another practice''s owner sees nothing of it'
);
select tests.authenticate_as_anon();
select throws_ok(format($$ select * from api.revenue_outlook(%L) $$, :'pr'), '42501', null, 'anon: denied');

-- ---------------------------------------------------------------------------
-- Bad input
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'owner_r');
select throws_ok(
    format($$ select * from api.revenue_outlook(%L, 6, 0) $$, :'pr'), '22023',
    'months back must be 0 to 24 and months ahead 1 to 24', 'no month ahead'
);
select throws_ok(
    format($$ select * from api.revenue_outlook(%L, 25, 6) $$, :'pr'), '22023',
    'months back must be 0 to 24 and months ahead 1 to 24', 'too many months back'
);
select throws_ok(
    format($$ select * from api.revenue_outlook(%L, null, 6) $$, :'pr'), '22023',
    'practice and months are required', 'a missing number'
);

select * from finish();
rollback;
