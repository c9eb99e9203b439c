-- Revenue outlook (issue 11): per programme and month, the money collected in the past months
-- (payments: successful sales minus refunds) beside the revenue expected in the coming months
-- from what bills on its own: Active contracts and active memberships (amount, billing period,
-- next billing date). A membership billed by an Active contract counts once, as the contract;
-- an Active contract counts once even if several memberships name it.
--
-- Who: owners and admins (the old app showed actual/projected revenue to admins only); staff
-- get insufficient_privilege, another practice's users and anon see nothing.

create function api.revenue_outlook(
    p_practice_id uuid, p_months_back integer default 6, p_months_ahead integer default 6
)
returns table (
    month_start date,
    category_id uuid,
    category_name text,
    is_total boolean,
    collected numeric,
    expected numeric,
    expected_charges bigint
)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
-- as api.metrics_series: JIT compilation costs more than it saves here
set jit = off
-- the planner probes payment_invoices and invoice_lines once per payment of the period (91,599
-- for 6 months at the largest bench practice: 1.1-2.0 s); hashing the practice's rows instead
-- took 0.68-0.74 s in the same minutes
set enable_nestloop = off
as $$
#variable_conflict use_column
begin
    if p_practice_id is null or p_months_back is null or p_months_ahead is null then
        raise exception 'practice and months are required' using errcode = '22023';
    end if;
    if p_months_back not between 0 and 24 or p_months_ahead not between 1 and 24 then
        raise exception 'months back must be 0 to 24 and months ahead 1 to 24' using errcode = '22023';
    end if;
    -- RLS: a practice the user does not belong to does not exist for them
    if not exists (select from app.practices as p where p.id = p_practice_id) then
        return;
    end if;
    if not p_practice_id = any(private.current_admin_practice_ids()) then
        raise exception 'the revenue outlook is for the practice''s owners and admins' using errcode = '42501';
    end if;

    return query
    with interval_names (name, period) as (
        -- private.billing_period's names, as api.practice_metrics reads them
        values
        ('daily', interval '1 day'), ('weekly', interval '7 days'), ('biweekly', interval '14 days'),
        ('monthly', interval '1 month'), ('quarterly', interval '3 months'),
        ('semiannually', interval '6 months'), ('yearly', interval '1 year'), ('annually', interval '1 year'),
        ('annual', interval '1 year')
    ),
    practice as (
        -- "today" and the months are the practice's (its time zone)
        select
            p.timezone,
            d.period as default_period,
            (now() at time zone p.timezone)::date as today,
            date_trunc('month', now() at time zone p.timezone)::date as this_month
        from app.practices as p
        left join interval_names as d on d.name = p.default_billing_interval
        where p.id = p_practice_id
    ),
    months as (
        select g.month::date as month_start
        from practice as pr
        cross join generate_series(
            pr.this_month - make_interval(months => p_months_back),
            pr.this_month + make_interval(months => p_months_ahead - 1),
            interval '1 month'
        ) as g (month)
    ),
    horizon as (
        select
            pr.*,
            ((pr.this_month - make_interval(months => p_months_back))::timestamp at time zone pr.timezone) as collected_from,
            (pr.this_month + make_interval(months => p_months_ahead))::date as expected_until
        from practice as pr
    ),
    -- collected: successful sales count +, refunds (Return) count -, each split over programmes
    -- by the invoice lines of the sale (a refund: of the sale it refunds); no lines: no programme
    moves as (
        select
            date_trunc('month', p.mx_created_at at time zone h.timezone)::date as month_start,
            case when p.type = 'Return' then -abs(p.amount) else abs(p.amount) end as amount,
            case when p.type = 'Return' then coalesce(p.original_payment_id, p.id) else p.id end as basis_id
        from app.payments as p
        cross join horizon as h
        where p.practice_id = p_practice_id
            and p.mx_created_at >= h.collected_from
            and p.status in ('Approved', 'Settled')
            and p.type in ('Sale', 'SaleCompletion', 'Return')
    ),
    lines as (
        -- per payment that money moved on (or whose refund did) and programme: its invoice lines
        select pi.payment_id, l.category_id, sum(l.total_amount) as amount
        from app.payment_invoices as pi
        inner join app.invoice_lines as l on pi.invoice_id = l.invoice_id
        where pi.practice_id = p_practice_id and l.practice_id = p_practice_id
            and pi.payment_id in (select mv.basis_id from moves as mv)
        group by pi.payment_id, l.category_id
    ),
    shares as (
        select li.payment_id, li.category_id, li.amount / nullif(sum(li.amount) over (partition by li.payment_id), 0) as share
        from lines as li
    ),
    collected_rows as (
        select
            mv.month_start,
            s.category_id,
            sum(round(mv.amount * coalesce(s.share, 1), 2)) as collected
        from moves as mv
        left join shares as s on mv.basis_id = s.payment_id and s.share is not null
        group by mv.month_start, s.category_id
    ),
    -- expected: one billing source per charge stream
    contract_programmes as (
        -- the programme (and billing period) of a membership each contract bills: one per contract
        select distinct on (m.contract_id) m.contract_id, m.category_id, m.billing_period
        from app.memberships as m
        inner join app.categories as k on m.category_id = k.id
        where m.practice_id = p_practice_id and m.contract_id is not null
        order by m.contract_id, k.sort_order, k.name, m.id
    ),
    contract_sources as (
        select
            c.id,
            c.amount,
            c.next_bill_date as next_on,
            coalesce(cp.billing_period, own.period, h.default_period) as period,
            cp.category_id,
            lower(trim(c.billing_interval)) = 'once' as once
        from app.contracts as c
        cross join horizon as h
        left join interval_names as own on own.name = lower(trim(c.billing_interval))
        left join contract_programmes as cp on c.id = cp.contract_id
        where c.practice_id = p_practice_id and c.status = 'Active'
    ),
    membership_sources as (
        select
            m.amount,
            coalesce(
                m.next_billing_on,
                ((m.last_paid_at at time zone h.timezone) + coalesce(m.billing_period, own.period, h.default_period))::date
            ) as next_on,
            coalesce(m.billing_period, own.period, h.default_period) as period,
            m.category_id
        from app.memberships as m
        cross join horizon as h
        left join interval_names as own on own.name = lower(trim(m.billing_interval))
        where m.practice_id = p_practice_id
            and m.status = 'active'
            and not exists (
                select from app.contracts as c
                where c.id = m.contract_id and c.practice_id = p_practice_id and c.status = 'Active'
            )
    ),
    sources as (
        select cs.amount, cs.next_on, case when cs.once then null else cs.period end as period, cs.category_id
        from contract_sources as cs
        union all
        select ms.amount, ms.next_on, ms.period, ms.category_id
        from membership_sources as ms
    ),
    charges as (
        -- each source's billing dates from today to the horizon: next_on + k periods (k counted
        -- from next_on, so a month-end date stays at month end); an overdue next date rolls on
        select
            date_trunc('month', (s.next_on + k.k * s.period))::date as month_start,
            s.category_id,
            s.amount
        from sources as s
        cross join horizon as h
        cross join lateral generate_series(
            greatest(0, floor((h.today - s.next_on) / greatest(extract(epoch from s.period) / 86400, 1))::integer - 1),
            case when s.period is null then 0
                else ceil((h.expected_until - s.next_on) / greatest(extract(epoch from s.period) / 86400, 1))::integer + 1
            end
        ) as k (k)
        where s.next_on is not null and s.amount is not null
            and (s.next_on + k.k * coalesce(s.period, interval '0')) >= h.today
            and (s.next_on + k.k * coalesce(s.period, interval '0')) < h.expected_until
    ),
    expected_rows as (
        select ch.month_start, ch.category_id, sum(ch.amount) as expected, count(*) as charges
        from charges as ch
        group by ch.month_start, ch.category_id
    ),
    amounts as (
        select cr.month_start, cr.category_id, cr.collected, 0::numeric as expected, 0::bigint as charges
        from collected_rows as cr
        union all
        select er.month_start, er.category_id, 0, er.expected, er.charges
        from expected_rows as er
    ),
    rows_of as (
        -- the practice's programmes, any other category with money, and "no programme" if needed
        select k.id, k.name, k.sort_order
        from app.categories as k
        where k.practice_id = p_practice_id
            and (k.kind = 'programme' or exists (select from amounts as a where a.category_id = k.id))
        union all
        select null, 'No programme', 2147483647
        where exists (select from amounts as a where a.category_id is null)
    )

    select
        mo.month_start,
        r.id,
        coalesce(r.name, 'All'),
        grouping(r.name) = 1,
        coalesce(sum(a.collected), 0)::numeric(12, 2),
        coalesce(sum(a.expected), 0)::numeric(12, 2),
        coalesce(sum(a.charges), 0)::bigint
    from months as mo
    cross join rows_of as r
    left join amounts as a
        on mo.month_start = a.month_start and a.category_id is not distinct from r.id
    group by grouping sets ((mo.month_start, r.id, r.name, r.sort_order), (mo.month_start))
    order by mo.month_start, grouping(r.name), r.sort_order, r.name;
end
$$;

comment on function api.revenue_outlook(uuid, integer, integer) is
'Owners/admins: per month (p_months_back before this one, this one, p_months_ahead - 1 after) and programme, money collected (sales minus refunds, split by invoice lines) and revenue expected from today on (Active contracts; active memberships without one) (docs/memberships.md).';

revoke all on function api.revenue_outlook(uuid, integer, integer) from public;
grant execute on function api.revenue_outlook(uuid, integer, integer) to authenticated;
