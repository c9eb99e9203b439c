-- The tab counters equal a count of the memberships after every kind of change: new
-- memberships, status changes (payments, contracts, staff), a product moved to another
-- programme, a membership deleted; and the tab counts read them.
begin;
\ir _helpers.psql

select plan(6);

create function tests.counts_match()
returns boolean
language sql
stable
set search_path = ''
as $$
    select not exists (
        (
            select practice_id, category_id, status, count(*) as n
            from app.memberships group by 1, 2, 3
        )
        except
        (select practice_id, category_id, status, member_count from app.membership_counts where member_count > 0)
    )
    and not exists (
        (select practice_id, category_id, status, member_count from app.membership_counts where member_count > 0)
        except
        (
            select practice_id, category_id, status, count(*) as n
            from app.memberships group by 1, 2, 3
        )
    )
$$;

select tests.create_practice('Count Clinic', 'count-clinic') as practice_id \gset
select tests.create_merchant_account(:'practice_id', 1086) as account_id \gset
select tests.map_product(:'practice_id', 'Testosterone', 'TRT');

create function tests.pay(p_payment_id bigint, p_customer bigint, p_name text, p_product text, p_status text)
returns bigint
language sql
set search_path = ''
as $$
    select tests.process_payment(
        1086,
        tests.payment_json(p_payment_id, 1086, '2026-01-01 09:00+00'::timestamptz + p_payment_id * interval '1 day',
            p_status, 'Sale', 'Recurring', 100.00, p_name),
        tests.invoice_json(p_payment_id + 100000, p_customer, p_name, array[p_product], 100.00)
    )
$$;

select tests.pay(1, 1, 'Ann', 'Testosterone', 'Approved');
select tests.pay(2, 2, 'Bob', 'Testosterone', 'Approved');
select tests.pay(3, 3, 'Cy', 'Mystery Tonic', 'Approved');
select ok(tests.counts_match(), 'new memberships are counted');

select tests.pay(4, 2, 'Bob', 'Testosterone', 'Declined');
select ok(tests.counts_match(), 'a status change moves one count');

update app.memberships set contract_status = 'Cancelled', contract_status_changed_at = now()
where patient_id = (select id from app.patients where name = 'Ann');
select private.settle_membership_status(m.id) from app.memberships as m
where m.patient_id = (select pt.id from app.patients as pt where pt.name = 'Ann');
select ok(tests.counts_match(), 'a contract cancel moves one count');

insert into app.product_category_changes (practice_id, product_id, to_category_id)
select
    p.practice_id,
    p.id,
    tests.category_id(:'practice_id', 'Peptides') as to_category_id
from app.products as p where p.practice_id = :'practice_id' and p.name = 'Mystery Tonic';
select ok(tests.counts_match(), 'a product moved to another programme moves its memberships'' counts');

delete from app.memberships where patient_id = (select id from app.patients where name = 'Bob');
select ok(tests.counts_match(), 'a deleted membership is uncounted');

select results_eq(
    format($$ select label, member_count from api.membership_tab_counts(%L) where tab in ('all', 'cancellations') order by 1 $$,
        :'practice_id'),
    $$ values ('All', 2::bigint), ('Cancellations', 1::bigint) $$,
    'the tabs read the counters'
);

select * from finish();
rollback;
