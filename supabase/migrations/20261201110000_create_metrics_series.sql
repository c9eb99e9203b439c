-- Metrics over time (issue 11, "metrics with charts"): api.metrics_series gives the figures
-- of api.practice_metrics month by month, per programme and in total, plus the MRR movement
-- (new, churned, reactivated MRR). Same definitions as api.practice_metrics (docs/memberships.md,
-- "Metric definitions"); each month is a period of its own, the first and the last cut to
-- [p_from, p_to], so the last month's end figures are those of api.practice_metrics(p_from, p_to).
--
-- Who: owners and admins of the practice (the old app showed MRR and period totals to admins
-- only); staff get insufficient_privilege, another practice's users and anon see nothing.

create function api.metrics_series(p_practice_id uuid, p_from date, p_to date)
returns table (
    period_start date,
    period_end date,
    category_id uuid,
    category_name text,
    active_at_start bigint,
    active_at_end bigint,
    past_due_at_end bigint,
    mrr numeric,
    new_members bigint,
    canceled bigint,
    reactivated bigint,
    churn_rate numeric,
    delinquency_churned bigint,
    new_mrr numeric,
    churned_mrr numeric,
    reactivated_mrr numeric
)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
begin
    if p_practice_id is null or p_from is null or p_to is null then
        raise exception 'practice, from and to are required' using errcode = '22023';
    end if;
    if p_from > p_to then
        raise exception 'the period starts after it ends (% > %)', p_from, p_to using errcode = '22023';
    end if;
    if p_to > p_from + interval '5 years' then
        raise exception 'the period is longer than 5 years' using errcode = '22023';
    end if;
    -- RLS: a practice the user does not belong to does not exist for them
    if not exists (select from app.practices as p where p.id = p_practice_id) then
        return;
    end if;
    if not p_practice_id = any(private.current_admin_practice_ids()) then
        raise exception 'metrics are for the practice''s owners and admins' using errcode = '42501';
    end if;

    return query
    with interval_names (name, period) as (
        -- private.billing_period's names (unknown names: the practice's default)
        values
        ('daily', interval '1 day'), ('weekly', interval '7 days'), ('biweekly', interval '14 days'),
        ('monthly', interval '1 month'), ('quarterly', interval '3 months'),
        ('semiannually', interval '6 months'), ('yearly', interval '1 year'), ('annually', interval '1 year'),
        ('annual', interval '1 year')
    ),
    practice as (
        select p.timezone, d.period as default_period
        from app.practices as p
        left join interval_names as d on d.name = p.default_billing_interval
        where p.id = p_practice_id
    ),
    bounds as (
        -- one period per calendar month, the first and last cut to [p_from, p_to]
        select
            greatest(g.month::date, p_from) as period_start,
            least((g.month + interval '1 month')::date - 1, p_to) as period_end,
            (greatest(g.month::date, p_from)::timestamp at time zone pr.timezone) as t0,
            ((least((g.month + interval '1 month')::date - 1, p_to) + 1)::timestamp at time zone pr.timezone) as t1
        from generate_series(
            date_trunc('month', p_from::timestamp), p_to::timestamp, interval '1 month'
        ) as g (month)
        cross join practice as pr
    ),
    x as (
        -- the practice's events, each with the next one's time (status at T: evidence_at < T <= next_at)
        select
            e.membership_id,
            e.old_status,
            e.new_status,
            e.source,
            e.reason,
            e.evidence_at,
            lead(e.evidence_at, 1, 'infinity') over (
                partition by e.membership_id order by e.evidence_at, e.id
            ) as next_at
        from app.membership_events as e
        where e.practice_id = p_practice_id
    ),
    first_active as (
        select x.membership_id, min(x.evidence_at) as first_active_event_at
        from x
        where x.new_status = 'active'
        group by x.membership_id
    ),
    ev as (
        -- per membership and period: only events that matter to it (current at t0 or t1, or inside)
        select
            x.membership_id,
            b.period_start,
            min(x.new_status) filter (where x.evidence_at < b.t0 and x.next_at >= b.t0) as status_start,
            min(x.new_status) filter (where x.evidence_at < b.t1 and x.next_at >= b.t1) as status_end,
            bool_or(x.new_status = 'canceled' and x.evidence_at >= b.t0) as canceled_in,
            bool_or(
                x.new_status = 'canceled' and x.source = 'system' and x.reason = 'lapsed'
                and x.evidence_at >= b.t0
            ) as lapsed_in,
            bool_or(
                x.new_status = 'active'
                and coalesce(x.old_status in ('canceled', 'paused'), false)
                and x.evidence_at >= b.t0
            ) as reactivated_in
        from x
        inner join bounds as b on x.evidence_at < b.t1 and x.next_at >= b.t0
        group by x.membership_id, b.period_start
    ),
    ms as (
        select
            b.period_start,
            m.category_id,
            -- monthly amount, as api.practice_metrics computes it
            round(coalesce(m.amount, 0) / greatest(
                extract(year from per.period) * 12 + extract(month from per.period)
                + extract(day from per.period) * 12 / 364.0,
                0.01
            ), 2) as monthly,
            ev.status_start,
            ev.status_end,
            case when fa.first_active_event_at is not null or m.status <> 'one_time' then
                least((m.started_on::timestamp at time zone pr.timezone), fa.first_active_event_at)
            end as first_active_at,
            coalesce(ev.canceled_in, false) as canceled_in,
            coalesce(ev.lapsed_in, false) as lapsed_in,
            coalesce(ev.reactivated_in, false) as reactivated_in,
            b.t0,
            b.t1
        from app.memberships as m
        cross join practice as pr
        cross join bounds as b
        left join ev on m.id = ev.membership_id and b.period_start = ev.period_start
        left join first_active as fa on m.id = fa.membership_id
        left join interval_names as own on own.name = lower(trim(m.billing_interval))
        cross join lateral (
            select coalesce(m.billing_period, own.period, pr.default_period) as period
        ) as per
        where m.practice_id = p_practice_id
    ),
    per_category as (
        select
            ms.period_start,
            ms.category_id,
            count(*) filter (where ms.status_start = 'active') as active_at_start,
            count(*) filter (where ms.status_end = 'active') as active_at_end,
            count(*) filter (where ms.status_end = 'past_due') as past_due_at_end,
            sum(ms.monthly) filter (where ms.status_end in ('active', 'past_due')) as mrr,
            count(*) filter (where ms.first_active_at >= ms.t0 and ms.first_active_at < ms.t1) as new_members,
            count(*) filter (where ms.canceled_in) as canceled,
            count(*) filter (where ms.lapsed_in) as lapsed,
            count(*) filter (where ms.reactivated_in) as reactivated,
            sum(ms.monthly) filter (
                where ms.first_active_at >= ms.t0 and ms.first_active_at < ms.t1
            ) as new_mrr,
            sum(ms.monthly) filter (where ms.canceled_in) as churned_mrr,
            sum(ms.monthly) filter (where ms.reactivated_in) as reactivated_mrr
        from ms
        group by ms.period_start, ms.category_id
    )

    select
        b.period_start,
        b.period_end,
        c.id,
        coalesce(c.name, 'All'),
        coalesce(sum(pc.active_at_start), 0)::bigint,
        coalesce(sum(pc.active_at_end), 0)::bigint,
        coalesce(sum(pc.past_due_at_end), 0)::bigint,
        coalesce(sum(pc.mrr), 0)::numeric(12, 2),
        coalesce(sum(pc.new_members), 0)::bigint,
        coalesce(sum(pc.canceled), 0)::bigint,
        coalesce(sum(pc.reactivated), 0)::bigint,
        round(coalesce(sum(pc.canceled), 0) / nullif(sum(pc.active_at_start), 0), 4),
        coalesce(sum(pc.lapsed), 0)::bigint,
        coalesce(sum(pc.new_mrr), 0)::numeric(12, 2),
        coalesce(sum(pc.churned_mrr), 0)::numeric(12, 2),
        coalesce(sum(pc.reactivated_mrr), 0)::numeric(12, 2)
    from bounds as b
    cross join app.categories as c
    left join per_category as pc on b.period_start = pc.period_start and c.id = pc.category_id
    where c.practice_id = p_practice_id
        and (
            c.kind = 'programme'
            or exists (select from app.memberships as m where m.practice_id = p_practice_id and m.category_id = c.id)
        )
    group by grouping sets ((b.period_start, b.period_end, c.id, c.name, c.sort_order), (b.period_start, b.period_end))
    order by b.period_start, grouping(c.id), c.sort_order, c.name;
end
$$;

comment on function api.metrics_series(uuid, date, date) is
'Owners/admins: api.practice_metrics month by month over [p_from, p_to] (first and last month cut to the period), per programme and in total, with new, churned and reactivated MRR (docs/memberships.md).';

revoke all on function api.metrics_series(uuid, date, date) from public;
grant execute on function api.metrics_series(uuid, date, date) to authenticated;
