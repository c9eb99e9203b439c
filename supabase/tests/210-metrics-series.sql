-- api.metrics_series: api.practice_metrics month by month, with the MRR movement. The data are
-- those of 151 (hand-computed there for March); here the months around them and the roles.
begin;
\ir _helpers.psql

select plan(16);

select tests.create_practice('Clinic S', 'clinic-s') as ps \gset
select tests.create_practice('Clinic T', 'clinic-t') as pt \gset
select tests.create_user('owner-s@example.test') as owner_s \gset
select tests.create_user('admin-s@example.test') as admin_s \gset
select tests.create_user('staff-s@example.test') as staff_s \gset
select tests.create_user('owner-t@example.test') as owner_t \gset
select tests.add_member(:'ps', :'owner_s', 'owner');
select tests.add_member(:'ps', :'admin_s', 'admin');
select tests.add_member(:'ps', :'staff_s', 'staff');
select tests.add_member(:'pt', :'owner_t', 'owner');
select tests.create_merchant_account(:'ps', 7101);
select tests.map_product(:'ps', 'Testosterone', 'TRT');
select tests.map_product(:'ps', 'Semaglutide', 'Weight Loss');
select tests.category_id(:'ps', 'TRT') as trt \gset

create function tests.sale(
    p_id bigint, p_customer bigint, p_name text, p_at timestamptz, p_source text, p_product text, p_total numeric
)
returns bigint
language sql
set search_path = ''
as $$
    select tests.process_payment(
        7101, tests.payment_json(p_id, 7101, p_at, 'Approved', 'Sale', p_source, p_total, p_name),
        tests.invoice_json(p_id + 100000, p_customer, p_name, array[p_product], p_total)
    )
$$;

-- Alice TRT 100 monthly from January; Dan TRT 90 once in January: overdue in February, lapses
-- in March (churn); Bob a one-time purchase in March; Wendy Weight Loss 80 monthly from February.
select tests.sale(21001, 911, 'Alice', '2026-01-10 10:00+00', 'Recurring', 'Testosterone', 100);
select tests.sale(21002, 911, 'Alice', '2026-02-10 10:00+00', 'Recurring', 'Testosterone', 100);
select tests.sale(21003, 911, 'Alice', '2026-03-10 10:00+00', 'Recurring', 'Testosterone', 100);
select tests.sale(21011, 912, 'Dan', '2026-01-05 10:00+00', 'Recurring', 'Testosterone', 90);
select tests.sale(21021, 913, 'Bob', '2026-03-15 10:00+00', 'QuickPay', 'Testosterone', 250);
select tests.sale(21031, 914, 'Wendy', '2026-02-03 10:00+00', 'Recurring', 'Semaglutide', 80);
select tests.sale(21032, 914, 'Wendy', '2026-03-03 10:00+00', 'Recurring', 'Semaglutide', 80);
select private.mark_overdue_memberships('2026-02-14 00:00+00');
select private.mark_overdue_memberships('2026-03-31 00:00+00');

-- ---------------------------------------------------------------------------
-- Owner: the months, hand-computed points, agreement with api.practice_metrics
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'owner_s');
select results_eq(
    format($$ select distinct period_start, period_end from api.metrics_series(%L, '2026-01-15', '2026-03-20')
        order by 1 $$, :'ps'),
    $$ values ('2026-01-15'::date, '2026-01-31'::date), ('2026-02-01', '2026-02-28'), ('2026-03-01', '2026-03-20') $$,
    'one period per month, the first and the last cut to the chosen period'
);
select results_eq(
    format($$ select period_start, active_at_end, past_due_at_end, mrr, new_members, new_mrr, canceled, churned_mrr
        from api.metrics_series(%L, '2026-01-01', '2026-03-31') where category_id = %L order by 1 $$, :'ps', :'trt'),
    $$ values
        ('2026-01-01'::date, 2::bigint, 0::bigint, 190.00::numeric, 2::bigint, 190.00::numeric, 0::bigint, 0.00::numeric),
        ('2026-02-01', 1, 1, 190.00, 0, 0.00, 0, 0.00),
        ('2026-03-01', 1, 0, 100.00, 0, 0.00, 1, 90.00) $$,
    'TRT by month: two new members in January (MRR 190), Dan past due in February, churned in March (90 MRR lost)'
);
select results_eq(
    format($$ select period_start, active_at_end, mrr, new_members, new_mrr
        from api.metrics_series(%L, '2026-01-01', '2026-03-31') where category_id is null order by 1 $$, :'ps'),
    $$ values ('2026-01-01'::date, 2::bigint, 190.00::numeric, 2::bigint, 190.00::numeric),
        ('2026-02-01', 2, 270.00, 1, 80.00), ('2026-03-01', 2, 180.00, 0, 0.00) $$,
    'the total by month: Wendy joins in February; Bob''s one-time purchase is never a member'
);
-- consistency: the last point's end figures and the first point's start figures are those of
-- api.practice_metrics for the whole period, programme by programme and in total
select is(
    (select array_agg(format('%s %s %s %s', category_name, active_at_end, past_due_at_end, mrr) order by category_name)
        from api.metrics_series(:'ps', '2026-01-20', '2026-03-15') where period_start = '2026-03-01'),
    (select array_agg(format('%s %s %s %s', category_name, active_at_end, past_due_at_end, mrr) order by category_name)
        from api.practice_metrics(:'ps', '2026-01-20', '2026-03-15')),
    'the last point agrees with api.practice_metrics for the same period (active, past due, MRR at the end)'
);
select is(
    (select array_agg(format('%s %s', category_name, active_at_start) order by category_name)
        from api.metrics_series(:'ps', '2026-01-20', '2026-03-15') where period_start = '2026-01-20'),
    (select array_agg(format('%s %s', category_name, active_at_start) order by category_name)
        from api.practice_metrics(:'ps', '2026-01-20', '2026-03-15')),
    'the first point agrees with api.practice_metrics on the members active at the start'
);
select is(
    (select array_agg(format('%s %s %s %s %s %s %s %s %s %s', category_name, active_at_start, active_at_end,
        past_due_at_end, mrr, new_members, canceled, reactivated, churn_rate, delinquency_churned) order by category_name)
        from api.metrics_series(:'ps', '2026-03-01', '2026-03-31')),
    (select array_agg(format('%s %s %s %s %s %s %s %s %s %s', category_name, active_at_start, active_at_end,
        past_due_at_end, mrr, new_members, canceled, reactivated, churn_rate, delinquency_churned) order by category_name)
        from api.practice_metrics(:'ps', '2026-03-01', '2026-03-31')),
    'one month: every figure is api.practice_metrics''s'
);

-- ---------------------------------------------------------------------------
-- Roles: admin sees it, staff are refused, another practice sees nothing, anon may not call it
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'admin_s');
select is(
    (select mrr from api.metrics_series(:'ps', '2026-03-01', '2026-03-31') where category_id is null),
    180.00::numeric, 'an admin sees the metrics'
);
select tests.authenticate_as(:'staff_s');
select throws_ok(
    format($$ select * from api.metrics_series(%L, '2026-03-01', '2026-03-31') $$, :'ps'), '42501',
    'metrics are for the practice''s owners and admins', 'staff are refused'
);
select tests.authenticate_as(:'owner_t');
select is(
    (select count(*) from api.metrics_series(:'ps', '2026-01-01', '2026-03-31')), 0::bigint,
    'another practice''s owner sees nothing of it'
);
select isnt_empty(
    format($$ select * from api.metrics_series(%L, '2026-01-01', '2026-03-31') $$, :'pt'),
    'and sees their own (empty) practice by month'
);
select tests.authenticate_as_anon();
select throws_ok(
    format($$ select * from api.metrics_series(%L, '2026-03-01', '2026-03-31') $$, :'ps'), '42501', null,
    'anon: denied'
);

-- ---------------------------------------------------------------------------
-- Bad input: a clear error
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'owner_s');
select throws_ok(
    format($$ select * from api.metrics_series(%L, '2026-03-31', '2026-03-01') $$, :'ps'), '22023',
    'the period starts after it ends (2026-03-31 > 2026-03-01)', 'from after to'
);
select throws_ok(
    format($$ select * from api.metrics_series(%L, null, '2026-03-01') $$, :'ps'), '22023',
    'practice, from and to are required', 'a missing date'
);
select throws_ok(
    format($$ select * from api.metrics_series(%L, '2010-01-01', '2026-03-01') $$, :'ps'), '22023',
    'the period is longer than 5 years', 'a period too long'
);
select throws_ok(
    $$ select * from api.metrics_series(null, '2026-03-01', '2026-03-31') $$, '22023', null, 'no practice'
);
select is(
    (select count(*) from api.metrics_series(gen_random_uuid(), '2026-03-01', '2026-03-31')), 0::bigint,
    'an unknown practice: nothing'
);

select * from finish();
rollback;
