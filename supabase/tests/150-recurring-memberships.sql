-- Memberships mean recurring relationships (issue 14): a one-off sale is a one-time purchase;
-- a contract, recurring payments, a staff "treat as member" or (opt-in) repeated purchases make
-- a membership; past due lapses to canceled and a payment reactivates it; the billing interval
-- comes from the contract or the spacing of the payments.
begin;
\ir _helpers.psql

select plan(43);

select tests.create_practice('Clinic R', 'clinic-r') as pr \gset
select set_config('tests.pr', :'pr', false);
select tests.create_user('admin-r@example.test') as admin_r \gset
select tests.add_member(:'pr', :'admin_r', 'admin');
select tests.create_user('staff-r@example.test') as staff_r \gset
select tests.add_member(:'pr', :'staff_r', 'staff');
select tests.create_merchant_account(:'pr', 6001) as account_r \gset
select tests.map_product(:'pr', 'Testosterone', 'TRT');
select tests.category_id(:'pr', 'TRT') as trt \gset

-- One payment of one patient (MX customer id) for Testosterone, source as given.
create function tests.buy(
    p_payment_id bigint, p_customer_id bigint, p_name text, p_created timestamptz, p_source text,
    p_status text default 'Approved'
)
returns bigint
language sql
set search_path = ''
as $$
    select tests.process_payment(
        6001, tests.payment_json(p_payment_id, 6001, p_created, p_status, 'Sale', p_source, 100.00, p_name),
        tests.invoice_json(p_payment_id + 100000, p_customer_id, p_name, array['Testosterone'])
    )
$$;

create function tests.membership_of(p_name text)
returns uuid
language sql
stable
set search_path = ''
as $$
    select m.id from app.memberships as m inner join app.patients as p on p.id = m.patient_id
    where p.name = p_name
$$;

create function tests.status_of(p_name text)
returns text
language sql
stable
set search_path = ''
as $$
    select m.status from app.memberships as m where m.id = tests.membership_of(p_name)
$$;
grant execute on all functions in schema tests to authenticated;

-- ---------------------------------------------------------------------------
-- A one-off sale
-- ---------------------------------------------------------------------------
select tests.buy(16001, 801, 'Olga', '2026-01-10 10:00+00', 'Terminal');
select results_eq(
    $$ select status, status_source, started_on, last_paid_at, recurring_since
        from app.memberships where id = tests.membership_of('Olga') $$,
    $$ values ('one_time'::text, 'payment'::text, '2026-01-10'::date, '2026-01-10 10:00+00'::timestamptz,
        null::timestamptz) $$,
    'a Terminal sale with an invoice is a one-time purchase, not a membership'
);
select results_eq(
    $$ select new_status, source, reason from app.membership_events where membership_id = tests.membership_of('Olga') $$,
    $$ values ('one_time'::text, 'payment'::text, 'no recurring evidence'::text) $$,
    'its history says why'
);

-- ---------------------------------------------------------------------------
-- Recurring payments without a contract: a member; the interval from the spacing
-- ---------------------------------------------------------------------------
select tests.buy(16011, 811, 'Rita', '2026-01-05 10:00+00', 'Recurring');
select tests.buy(16012, 811, 'Rita', '2026-02-05 10:00+00', 'Recurring');
select tests.buy(16013, 811, 'Rita', '2026-03-05 10:00+00', 'Recurring');
select results_eq(
    $$ select status, started_on, recurring_since, billing_period, billing_period_source
        from app.memberships where id = tests.membership_of('Rita') $$,
    $$ values ('active'::text, '2026-01-05'::date, '2026-01-05 10:00+00'::timestamptz, interval '1 month',
        'spacing'::text) $$,
    'recurring payments without a contract make a member; monthly from their spacing'
);
select tests.buy(16021, 821, 'Wes', '2026-01-01 10:00+00', 'Recurring');
select tests.buy(16022, 821, 'Wes', '2026-01-08 10:00+00', 'Recurring');
select tests.buy(16023, 821, 'Wes', '2026-01-15 09:00+00', 'Recurring');
select results_eq(
    $$ select status, billing_period, billing_period_source from app.memberships where id = tests.membership_of('Wes') $$,
    $$ values ('active'::text, interval '7 days', 'spacing'::text) $$,
    'weekly payments: a weekly interval'
);
-- the sweep uses it: last paid 01-15 + 7 days + 7 grace days -> overdue from 01-30 00:00 UTC
select results_eq(
    $$ select marked_past_due, lapsed, error from private.sweep_memberships('2026-01-29 23:59+00') $$,
    $$ values (0, 0, null::text) $$,
    'weekly member: not overdue before last payment + a week + grace'
);
select results_eq(
    $$ select marked_past_due, error from private.sweep_memberships('2026-01-30 00:00+00') $$,
    $$ values (1, null::text) $$,
    'weekly member: overdue after a week + grace, not after a month'
);
select is(tests.status_of('Wes'), 'past_due', 'Wes is past due');
select is(tests.status_of('Olga'), 'one_time', 'the sweep never touches a one-time purchase');

-- ---------------------------------------------------------------------------
-- A one-off, then a contract (interval from the contract: every 2 weeks)
-- ---------------------------------------------------------------------------
select tests.buy(16031, 831, 'Omar', '2026-01-10 10:00+00', 'QuickPay');
select is(tests.status_of('Omar'), 'one_time', 'Omar''s first purchase is one-time');
select tests.buy(16032, 831, 'Omar', '2026-02-01 10:00+00', 'API');
select is(tests.status_of('Omar'), 'one_time', 'a second purchase alone (repeat rule off) is one-time too');
select private.start_sync_run(:'account_r', 'contracts') as run_r \gset
select private.apply_contract(
    :run_r, '2026-02-02 08:00+00',
    jsonb_build_object(
        'id', 9301, 'merchant_id', 6001, 'customer_id', 831, 'customer_name', 'Omar', 'interval', 'Weekly',
        'every', '2 Weeks', 'amount', '100.00', 'status', 'Active', 'start_date', '2026-02-01',
        'next_bill_date', '2026-02-15'
    ),
    '[{"id": 16032, "status": "Approved"}]'
) ->> 'memberships' as applied;
select results_eq(
    $$ select status, contract_id, billing_period, billing_period_source, started_on
        from app.memberships where id = tests.membership_of('Omar') $$,
    $$ values ('active'::text, 9301::bigint, interval '14 days', 'contract'::text, '2026-02-01'::date) $$,
    'a contract that bills the programme makes a member since its start; the interval is the contract''s (every 2 weeks)'
);
select results_eq(
    $$ select old_status, new_status from app.membership_events where membership_id = tests.membership_of('Omar')
        order by id $$,
    $$ values (null::text, 'one_time'::text), ('one_time', 'active') $$,
    'history: one-time purchase, then member'
);

-- ---------------------------------------------------------------------------
-- Staff: treat as member (reversible, audited)
-- ---------------------------------------------------------------------------
select tests.buy(16041, 841, 'Tina', '2026-03-01 10:00+00', 'QuickPay');
select tests.membership_of('Tina') as tina \gset
select tests.authenticate_as(:'staff_r');
select throws_ok(
    format($$ select api.set_membership_status(%L, 'canceled', 'left') $$, :'tina'),
    '22023', null, 'a one-time purchase cannot be paused or canceled: it is no membership'
);
select throws_ok(
    format($$ select api.treat_as_member(%L, true, ' ') $$, :'tina'),
    '22023', 'a reason is required', 'treat as member needs a reason'
);
select is(api.treat_as_member(:'tina', true, 'pays by hand every month'), 'active', 'treated as member: active');
select is(
    (select count(*) from api.list_memberships(:'pr') where id = :'tina'), 1::bigint,
    'now in the members'' list'
);
select results_eq(
    format($$ select changed_by, old_values ->> 'treated_as_member', new_values ->> 'treated_as_member',
        new_values ->> 'treated_as_member_reason', new_values ->> 'status'
        from api.workflow_audit where row_id = %L order by id $$, :'tina'),
    format($$ values (%L::uuid, 'false', 'true', 'pays by hand every month', 'active') $$, :'staff_r'),
    'the decision is audited: who, old and new value, reason, status after'
);
select is(api.treat_as_member(:'tina', false, 'stopped coming'), 'one_time', 'undone: a one-time purchase again');
select results_eq(
    format($$ select source, reason, actor_user_id from api.membership_events where membership_id = %L
        order by id desc limit 1 $$, :'tina'),
    format($$ values ('staff'::text, 'stopped coming'::text, %L::uuid) $$, :'staff_r'),
    'the undo is in the history with the actor and reason'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- The opt-in repeat rule: two purchases within 1.5 billing intervals
-- ---------------------------------------------------------------------------
select tests.buy(16051, 851, 'Rex', '2026-01-10 10:00+00', 'QuickPay');
select tests.buy(16052, 851, 'Rex', '2026-02-05 10:00+00', 'QuickPay');
select tests.buy(16061, 861, 'Ruth', '2026-01-10 10:00+00', 'QuickPay');
select tests.buy(16062, 861, 'Ruth', '2026-03-30 10:00+00', 'QuickPay');
select is(tests.status_of('Rex'), 'one_time', 'repeat purchases are one-time while the practice has not opted in');
update app.practices set count_repeat_purchases = true where id = :'pr';
select is(
    private.recompute_memberships(:'pr') ->> 'became_member', '1',
    'after opting in, the recomputation makes one member'
);
select results_eq(
    $$ select status, repeat_since from app.memberships where id = tests.membership_of('Rex') $$,
    $$ values ('active'::text, '2026-02-05 10:00+00'::timestamptz) $$,
    'two purchases 26 days apart (monthly default: within 45 days): a member'
);
select is(tests.status_of('Ruth'), 'one_time', 'two purchases 79 days apart: still one-time');
update app.practices set count_repeat_purchases = false where id = :'pr';
select private.recompute_memberships(:'pr');

-- ---------------------------------------------------------------------------
-- Lapse after the period, and reactivation
-- ---------------------------------------------------------------------------
-- Rita: last paid 03-05, monthly: overdue from 04-13 00:00 UTC, lapses 30 days after (05-14)
select results_eq(
    $$ select marked_past_due, lapsed from private.sweep_memberships('2026-04-13 00:00+00') $$,
    $$ values (2, 1) $$,
    'Rita and Omar become past due; Wes, past due since 01-30, lapses'
);
select results_eq(
    $$ select status, lapsed_at from app.memberships where id = tests.membership_of('Wes') $$,
    $$ values ('canceled'::text, '2026-03-02 00:00+00'::timestamptz) $$,
    'Wes lapsed at the end of his lapse period (01-30 + 30 days), not when the sweep ran'
);
select is(tests.status_of('Rita'), 'past_due', 'Rita is past due');
select results_eq(
    $$ select lapsed from private.sweep_memberships('2026-05-13 23:59+00') $$,
    $$ values (0) $$, 'within the lapse period: still past due'
);
select results_eq(
    $$ select lapsed from private.sweep_memberships('2026-05-14 00:00+00') $$,
    $$ values (1) $$, 'after it: Rita lapses'
);
select results_eq(
    $$ select m.status, m.status_source, m.canceled_at, e.new_status, e.source, e.reason, e.evidence_at
        from app.memberships as m
        inner join app.membership_events as e on e.membership_id = m.id
        where m.id = tests.membership_of('Rita') order by e.id desc limit 1 $$,
    $$ values ('canceled'::text, 'system'::text, '2026-05-14 00:00+00'::timestamptz, 'canceled'::text, 'system'::text,
        'lapsed'::text, '2026-05-14 00:00+00'::timestamptz) $$,
    'lapsed: canceled by the system, reason lapsed, at the end of the lapse period'
);
select is(tests.status_of('Omar'), 'past_due', 'Omar is past due (contract next bill 02-15 + grace)');
select is(tests.status_of('Olga'), 'one_time', 'the one-time purchase was never past due');
select results_eq(
    $$ select lapsed from private.sweep_memberships('2026-06-30 00:00+00') $$,
    $$ values (0) $$, 'an active contract keeps a past-due membership from lapsing'
);
select is(tests.status_of('Omar'), 'past_due', 'Omar, with an active contract, stays past due');
select tests.buy(16014, 811, 'Rita', '2026-05-20 10:00+00', 'Recurring');
select results_eq(
    $$ select m.status, e.old_status, e.new_status from app.memberships as m
        inner join app.membership_events as e on e.membership_id = m.id
        where m.id = tests.membership_of('Rita') order by e.id desc limit 1 $$,
    $$ values ('active'::text, 'canceled'::text, 'active'::text) $$,
    'a later payment reactivates the lapsed membership'
);
select results_eq(
    $$ select canceled, delinquency_churned, reactivated from api.practice_metrics(
        current_setting('tests.pr')::uuid, '2026-05-01', '2026-05-31') where category_id is null $$,
    $$ values (1::bigint, 1::bigint, 1::bigint) $$,
    'May: the lapse is delinquency churn (and churn), the payment a reactivation'
);

-- ---------------------------------------------------------------------------
-- Lists and counts: members only; one-time purchases apart
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'staff_r');
select is(
    (select count(*) from api.list_memberships(:'pr') where status = 'one_time'), 0::bigint,
    'no one-time purchase in the members'' list'
);
-- (arrays compared, not set_eq: set_eq needs a temporary table, and no client role may make one)
select is(
    array(select l.patient_name from api.list_one_time_purchases(:'pr') as l order by 1),
    array['Olga', 'Rex', 'Ruth', 'Tina'],
    'the one-time purchases list'
);
select is(
    array(select l.patient_name from api.list_one_time_purchases(:'pr', :'trt', p_search => 'r') as l order by 1),
    array['Rex', 'Ruth'],
    'with the members'' list filters (programme tab, search)'
);
select results_eq(
    format($$ select tab, member_count from api.membership_tab_counts(%L) where tab in ('all', %L)
        order by sort_order $$, :'pr', :'trt'),
    format($$ values ('all', 3::bigint), (%L, 3::bigint) $$, :'trt'),
    'tab counts: the three members (Rita, Wes, Omar), no one-time purchase'
);
select results_eq(
    format($$ select tab, purchase_count from api.one_time_purchase_counts(%L) where tab in ('all', %L)
        order by sort_order $$, :'pr', :'trt'),
    format($$ values ('all', 4::bigint), (%L, 4::bigint) $$, :'trt'),
    'one-time purchase counts per programme'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- Issue 12 item 4: the time zone is validated; one practice's failure stops no other
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'admin_r');
select throws_ok(
    format($$ update app.practices set timezone = 'Mars/Olympus' where id = %L $$, :'pr'),
    '22023', 'time zone "Mars/Olympus" not recognized', 'an admin''s unknown time zone is refused'
);
select tests.clear_authentication();
select tests.create_practice('Clinic S', 'clinic-s') as ps \gset
select tests.create_merchant_account(:'ps', 6002);
select tests.map_product(:'ps', 'Testosterone', 'TRT');
select tests.process_payment(
    6002, tests.payment_json(16101, 6002, '2026-01-05 10:00+00', p_customer_name => 'Sam'),
    tests.invoice_json(116101, 901, 'Sam', array['Testosterone'])
);
-- Clinic R's data makes every update of its memberships fail
create function tests.fail_for_clinic_r()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    raise exception 'bad data in clinic r';
end
$$;
select tests.buy(16071, 871, 'Vera', '2026-01-05 10:00+00', 'Recurring');
create trigger fail_for_clinic_r before update on app.memberships
for each row when (new.practice_id = current_setting('tests.pr')::uuid)
execute function tests.fail_for_clinic_r();
select results_eq(
    $$ select practice_slug, marked_past_due, error from private.sweep_memberships('2026-02-20 00:00+00')
        order by practice_slug $$,
    $$ values ('clinic-r'::text, 0, 'P0001: bad data in clinic r'::text), ('clinic-s', 1, null) $$,
    'the sweep reports the practice that failed and still does the others'
);
select is(
    (select m.status from app.memberships as m inner join app.patients as p on m.patient_id = p.id
        where p.name = 'Sam'),
    'past_due', 'the other practice''s member is past due'
);

select * from finish();
rollback;
