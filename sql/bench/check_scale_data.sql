-- Are the generated memberships what the worker's procedures would compute from the same
-- payments? Re-run private.refresh_membership_from_payments (which also settles the status)
-- on a sample and compare, inside a transaction that is rolled back.
--
--   psql "$URL" -v ON_ERROR_STOP=1 -v sample=500 -f sql/bench/check_scale_data.sql

begin;

create temp table sample_before on commit drop as
select m.*
from app.memberships as m
order by m.id
limit :sample;

create temp table sample_events on commit drop as
select
    e.membership_id,
    count(*) as n
from app.membership_events as e
inner join sample_before as s on e.membership_id = s.id
group by e.membership_id;

select count(private.refresh_membership_from_payments(s.practice_id, s.patient_id, s.category_id))
from sample_before as s;

select
    count(*) as checked,
    count(*) filter (
        where (
            b.status, b.status_source, b.started_on, b.last_paid_at, b.amount, b.product_names,
            b.payment_status, b.payment_evidence_at
        )
        is distinct from (
            m.status, m.status_source, m.started_on, m.last_paid_at, m.amount,
            m.product_names, m.payment_status, m.payment_evidence_at
        )
    ) as differing,
    count(*) filter (
        where (select count(*) from app.membership_events as e where e.membership_id = b.id)
        <> coalesce((select e.n from sample_events as e where e.membership_id = b.id), 0)
    ) as with_new_events
from sample_before as b
inner join app.memberships as m on b.id = m.id;

rollback;
