-- api.practice_metrics on a hand-computed data set: members only in active/MRR/churn,
-- one-time revenue apart from MRR, delinquency churn (lapse) counted as churn.
begin;
\ir _helpers.psql

select plan(5);

select tests.create_practice('Clinic Q', 'clinic-q') as pq \gset
select tests.create_user('staff-q@example.test') as staff_q \gset
select tests.add_member(:'pq', :'staff_q', 'staff');
select tests.create_merchant_account(:'pq', 7001);
select tests.map_product(:'pq', 'Testosterone', 'TRT');
select tests.map_product(:'pq', 'Semaglutide', 'Weight Loss');
select tests.category_id(:'pq', 'TRT') as trt \gset
select tests.category_id(:'pq', 'Weight Loss') as wl \gset

create function tests.sale(
    p_id bigint, p_customer bigint, p_name text, p_at timestamptz, p_source text, p_product text, p_total numeric
)
returns bigint
language sql
set search_path = ''
as $$
    select tests.process_payment(
        7001, tests.payment_json(p_id, 7001, p_at, 'Approved', 'Sale', p_source, p_total, p_name),
        tests.invoice_json(p_id + 100000, p_customer, p_name, array[p_product], p_total)
    )
$$;

-- The data (period under test: March 2026, UTC):
--   Alice  TRT  Recurring 100 on 01-10, 02-10, 03-10        member, active all March, MRR 100
--   Dan    TRT  Recurring  90 on 01-05 only                 overdue 02-13, lapses 03-16: churn
--   Bob    TRT  QuickPay  250 on 03-15                       one-time purchase
--   Alice  TRT  Terminal   40 on 03-20 (an extra vial)      one-time revenue, her MRR unchanged
--   Carl   WL   Terminal   80 on 03-20                      one-time purchase
--   Eve    WL   Invoice    60 on 02-01 and 03-25 (repeat rule off)   one-time purchases
-- Hand-computed for March:
--   TRT: active at start 1 (Alice; Dan is past due), active at end 1, past due at end 0, MRR 100,
--        new 0, canceled 1 (Dan's lapse), delinquency 1, reactivated 0, churn 1/1 = 1.0000;
--        revenue: one-time purchases 2 (Bob, Alice's extra) 290, recurring sales 1 (Alice) 100
--   WL:  no member: 0 everywhere; one-time purchases 2 (Carl, Eve's 03-25) 140
--   All: MRR 100, canceled 1; one-time 4 / 430, recurring 1 / 100
select tests.sale(17001, 901, 'Alice', '2026-01-10 10:00+00', 'Recurring', 'Testosterone', 100);
select tests.sale(17002, 901, 'Alice', '2026-02-10 10:00+00', 'Recurring', 'Testosterone', 100);
select tests.sale(17003, 901, 'Alice', '2026-03-10 10:00+00', 'Recurring', 'Testosterone', 100);
select tests.sale(17011, 902, 'Dan', '2026-01-05 10:00+00', 'Recurring', 'Testosterone', 90);
select tests.sale(17021, 903, 'Bob', '2026-03-15 10:00+00', 'QuickPay', 'Testosterone', 250);
select tests.sale(17031, 904, 'Carl', '2026-03-20 10:00+00', 'Terminal', 'Semaglutide', 80);
select tests.sale(17041, 905, 'Eve', '2026-02-01 10:00+00', 'Invoice', 'Semaglutide', 60);
select tests.sale(17042, 905, 'Eve', '2026-03-25 10:00+00', 'Invoice', 'Semaglutide', 60);
-- the sweep as the scheduler runs it: before March (Dan overdue) and after (Dan lapses)
select is(private.mark_overdue_memberships('2026-02-14 00:00+00'), 1, 'Dan is overdue in February');
-- Alice's extra vial arrives after the February sweep (a March sale)
select tests.sale(17004, 901, 'Alice', '2026-03-20 11:00+00', 'Terminal', 'Testosterone', 40);
select private.mark_overdue_memberships('2026-03-31 00:00+00');

select tests.authenticate_as(:'staff_q');
select results_eq(
    format($$ select active_at_start, active_at_end, past_due_at_end, mrr, new_members, canceled, reactivated,
        churn_rate, delinquency_churned
        from api.practice_metrics(%L, '2026-03-01', '2026-03-31') where category_id = %L $$, :'pq', :'trt'),
    $$ values (1::bigint, 1::bigint, 0::bigint, 100.00::numeric, 0::bigint, 1::bigint, 0::bigint, 1.0000::numeric,
        1::bigint) $$,
    'TRT in March: members only; the lapse is churn (delinquency); MRR from the member alone'
);
select results_eq(
    format($$ select active_at_start, active_at_end, mrr, new_members, canceled
        from api.practice_metrics(%L, '2026-03-01', '2026-03-31') where category_id = %L $$, :'pq', :'wl'),
    $$ values (0::bigint, 0::bigint, 0.00::numeric, 0::bigint, 0::bigint) $$,
    'Weight Loss in March: one-time buyers only: no member, no MRR, no new member'
);
select results_eq(
    format($$ select mrr, canceled, delinquency_churned
        from api.practice_metrics(%L, '2026-03-01', '2026-03-31') where category_id is null $$, :'pq'),
    $$ values (100.00::numeric, 1::bigint, 1::bigint) $$,
    'the total row of the metrics'
);
select results_eq(
    format($$ select category_name, one_time_purchases, one_time_revenue, recurring_sales, recurring_revenue
        from api.practice_revenue(%L, '2026-03-01', '2026-03-31')
        where category_id in (%L, %L) or category_id is null order by category_id is null, category_name $$,
        :'pq', :'trt', :'wl'),
    $$ values ('TRT'::text, 2::bigint, 290.00::numeric, 1::bigint, 100.00::numeric),
        ('Weight Loss', 2, 140.00, 0, 0.00),
        ('All', 4, 430.00, 1, 100.00) $$,
    'revenue in March: one-time purchases (Bob, Alice''s extra vial; Carl, Eve) apart from the recurring sale'
);

select * from finish();
rollback;
