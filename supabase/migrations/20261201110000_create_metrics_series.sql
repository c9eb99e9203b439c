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
-- the planner's row estimates for the CTEs cross jit_above_cost; compiling ~275 expressions
-- took ~0.25 s at bench scale, more than the whole query gains from it
set jit = off
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
        -- one period per calendar month (i = 1, 2, ...), the first and last cut to [p_from, p_to]
        select
            g.i::integer as i,
            greatest(g.month::date, p_from) as period_start,
            least((g.month + interval '1 month')::date - 1, p_to) as period_end,
            (greatest(g.month::date, p_from)::timestamp at time zone pr.timezone) as t0,
            ((least((g.month + interval '1 month')::date - 1, p_to) + 1)::timestamp at time zone pr.timezone) as t1
        from generate_series(
            date_trunc('month', p_from::timestamp), p_to::timestamp, interval '1 month'
        ) with ordinality as g (month, i)
        cross join practice as pr
    ),
    edge_array as (
        -- the instants whose status counts: edge i starts period i, edge i + 1 ends it (a month's
        -- end is the next one's start); width_bucket(t, edges) = how many edges are <= t
        select array_append(array_agg(b.t0 order by b.i), max(b.t1)) as edges, count(*)::integer as n
        from bounds as b
    ),
    first_active as (
        select e.membership_id, min(e.evidence_at) as first_active_event_at
        from app.membership_events as e
        where e.practice_id = p_practice_id and e.new_status = 'active'
        group by e.membership_id
    ),
    ms as (
        -- each membership once: its programme, monthly amount and when it first became active
        select
            m.id,
            m.category_id,
            -- monthly amount, as api.practice_metrics computes it
            round(coalesce(m.amount, 0) / greatest(
                extract(year from per.period) * 12 + extract(month from per.period)
                + extract(day from per.period) * 12 / 364.0,
                0.01
            ), 2) as monthly,
            case when fa.first_active_event_at is not null or m.status <> 'one_time' then
                least((m.started_on::timestamp at time zone pr.timezone), fa.first_active_event_at)
            end as first_active_at
        from app.memberships as m
        cross join practice as pr
        left join first_active as fa on m.id = fa.membership_id
        left join interval_names as own on own.name = lower(trim(m.billing_interval))
        cross join lateral (
            select coalesce(m.billing_period, own.period, pr.default_period) as period
        ) as per
        where m.practice_id = p_practice_id
    ),
    xm as (
        -- the practice's events with their membership's programme and monthly amount, each with
        -- the next event's time (status at T: evidence_at < T <= next_at)
        select
            e.membership_id,
            e.old_status,
            e.new_status,
            e.source,
            e.reason,
            e.evidence_at,
            lead(e.evidence_at, 1, 'infinity') over (
                partition by e.membership_id order by e.evidence_at, e.id
            ) as next_at,
            ms.category_id,
            ms.monthly
        from app.membership_events as e
        inner join ms on e.membership_id = ms.id
        where e.practice_id = p_practice_id
    ),
    spans as (
        -- an active or past-due event is current at edges from_k .. to_k - 1
        -- (evidence_at < edge <= next_at)
        select
            xm.category_id,
            xm.new_status,
            xm.monthly,
            width_bucket(xm.evidence_at, ea.edges) + 1 as from_k,
            width_bucket(xm.next_at, ea.edges) + 1 as to_k
        from xm
        cross join edge_array as ea
        where xm.new_status in ('active', 'past_due')
    ),
    deltas as (
        -- counted from from_k on, no longer from to_k on: a running sum over the edges gives the
        -- count at each one without looking each membership up at each edge
        select sp.from_k as k, sp.category_id, sp.new_status, 1 as n, sp.monthly as w
        from spans as sp
        where sp.from_k < sp.to_k
        union all
        select sp.to_k, sp.category_id, sp.new_status, -1, -sp.monthly
        from spans as sp
        where sp.from_k < sp.to_k
    ),
    per_k as (
        select
            d.k,
            d.category_id,
            sum(d.n) filter (where d.new_status = 'active') as active,
            sum(d.n) filter (where d.new_status = 'past_due') as past_due,
            sum(d.w) as mrr
        from deltas as d
        group by d.k, d.category_id
    ),
    at_edge as (
        select
            g.k,
            cat.category_id,
            sum(coalesce(pk.active, 0)) over running as active,
            sum(coalesce(pk.past_due, 0)) over running as past_due,
            sum(coalesce(pk.mrr, 0)) over running as mrr
        from edge_array as ea
        cross join generate_series(1, ea.n + 1) as g (k)
        cross join (select distinct pk.category_id from per_k as pk) as cat
        left join per_k as pk on g.k = pk.k and cat.category_id = pk.category_id
        window running as (partition by cat.category_id order by g.k)
    ),
    moves as (
        -- per membership and period: whether it was canceled, lapsed, reactivated inside it
        select
            width_bucket(xm.evidence_at, ea.edges) as i,
            xm.membership_id,
            xm.category_id,
            xm.monthly,
            bool_or(xm.new_status = 'canceled') as canceled_in,
            bool_or(xm.new_status = 'canceled' and xm.source = 'system' and xm.reason = 'lapsed') as lapsed_in,
            bool_or(
                xm.new_status = 'active' and coalesce(xm.old_status in ('canceled', 'paused'), false)
            ) as reactivated_in
        from xm
        cross join edge_array as ea
        where xm.new_status in ('canceled', 'active')
            and xm.evidence_at >= ea.edges[1] and xm.evidence_at < ea.edges[ea.n + 1]
        group by 1, xm.membership_id, xm.category_id, xm.monthly
    ),
    moved as (
        select
            mv.i,
            mv.category_id,
            count(*) filter (where mv.canceled_in) as canceled,
            count(*) filter (where mv.lapsed_in) as lapsed,
            count(*) filter (where mv.reactivated_in) as reactivated,
            sum(mv.monthly) filter (where mv.canceled_in) as churned_mrr,
            sum(mv.monthly) filter (where mv.reactivated_in) as reactivated_mrr
        from moves as mv
        group by mv.i, mv.category_id
    ),
    news as (
        select
            width_bucket(ms.first_active_at, ea.edges) as i,
            ms.category_id,
            count(*) as new_members,
            sum(ms.monthly) as new_mrr
        from ms
        cross join edge_array as ea
        where ms.first_active_at >= ea.edges[1] and ms.first_active_at < ea.edges[ea.n + 1]
        group by 1, ms.category_id
    )

    select
        b.period_start,
        b.period_end,
        c.id,
        coalesce(c.name, 'All'),
        coalesce(sum(s0.active), 0)::bigint,
        coalesce(sum(s1.active), 0)::bigint,
        coalesce(sum(s1.past_due), 0)::bigint,
        coalesce(sum(s1.mrr), 0)::numeric(12, 2),
        coalesce(sum(n.new_members), 0)::bigint,
        coalesce(sum(mv.canceled), 0)::bigint,
        coalesce(sum(mv.reactivated), 0)::bigint,
        round(coalesce(sum(mv.canceled), 0) / nullif(sum(s0.active), 0), 4),
        coalesce(sum(mv.lapsed), 0)::bigint,
        coalesce(sum(n.new_mrr), 0)::numeric(12, 2),
        coalesce(sum(mv.churned_mrr), 0)::numeric(12, 2),
        coalesce(sum(mv.reactivated_mrr), 0)::numeric(12, 2)
    from bounds as b
    cross join app.categories as c
    left join at_edge as s0 on b.i = s0.k and c.id = s0.category_id
    left join at_edge as s1 on b.i + 1 = s1.k and c.id = s1.category_id
    left join moved as mv on b.i = mv.i and c.id = mv.category_id
    left join news as n on b.i = n.i and c.id = n.category_id
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
