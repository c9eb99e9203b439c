-- The dashboard API and one-time purchases (issue 14).
--
-- Members' lists, tab counts and metrics leave one-time purchases (status one_time) out;
-- one-time purchases have their own list (same filters, sort and pages) and counts per
-- programme; metrics report one-time revenue apart from MRR, and delinquency churn (lapses).

-- ---------------------------------------------------------------------------
-- The list: api.list_memberships (20261129090400) with one change: without a status filter,
-- one-time purchases are left out (every tab lists members only); p_status => '{one_time}'
-- lists them (what api.list_one_time_purchases does).
-- ---------------------------------------------------------------------------
create or replace function api.list_memberships(
    p_practice_id uuid,
    p_tab text default 'all',
    p_status text[] default null,
    p_google_review boolean default null,
    p_referral_source text default null,
    p_fulfillment text default null,
    p_started_from date default null,
    p_started_to date default null,
    p_search text default null,
    p_sort text default 'name',
    p_after jsonb default null,
    p_limit integer default 50
)
returns table (
    id uuid,
    practice_id uuid,
    patient_id uuid,
    patient_name text,
    category_id uuid,
    category_name text,
    status text,
    status_source text,
    status_changed_at timestamptz,
    started_on date,
    last_paid_at timestamptz,
    next_billing_on date,
    canceled_at timestamptz,
    amount numeric,
    billing_interval text,
    product_names text[],
    google_review_submitted boolean,
    google_review_at timestamptz,
    referral_source text,
    fulfillment text,
    notes text,
    cursor jsonb
)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_field text := lower(split_part(regexp_replace(trim(coalesce(p_sort, 'name')), '[ :]+', '.'), '.', 1));
    v_dir text := lower(coalesce(nullif(split_part(regexp_replace(trim(coalesce(p_sort, 'name')), '[ :]+', '.'), '.', 2), ''), 'asc'));
    v_key text;
    v_type text;
    v_where text := 'm.practice_id = $1';
    v_category uuid;
    v_pattern text;
    v_limit integer := least(greatest(coalesce(p_limit, 50), 1), 1000);
begin
    v_key := case v_field
        when 'name' then 'm.patient_name_key'
        when 'started_on' then 'coalesce(m.started_on, ''-infinity''::date)'
        when 'last_paid_at' then 'coalesce(m.last_paid_at, ''-infinity''::timestamptz)'
    end;
    v_type := case v_field when 'name' then 'text' when 'started_on' then 'date' else 'timestamptz' end;
    if v_key is null or v_dir not in ('asc', 'desc') then
        raise exception 'p_sort must be name, started_on or last_paid_at, then asc or desc' using errcode = '22023';
    end if;

    if coalesce(p_tab, 'all') = 'cancellations' then
        v_where := v_where || ' and m.status in (''paused'', ''canceled'')';
    elsif coalesce(p_tab, 'all') <> 'all' then
        begin
            v_category := p_tab::uuid;
        exception when invalid_text_representation then
            raise exception 'p_tab must be all, cancellations or a programme id' using errcode = '22023';
        end;
        v_where := v_where || ' and m.category_id = $2';
    end if;
    if p_status is not null then
        v_where := v_where || ' and m.status = any($3)';
    else
        v_where := v_where || ' and m.status <> ''one_time''';
    end if;
    if p_google_review is not null then
        v_where := v_where || ' and m.google_review_submitted = $4';
    end if;
    if p_referral_source is not null then
        v_where := v_where || ' and m.referral_source = $5';
    end if;
    if p_fulfillment is not null then
        v_where := v_where || ' and m.fulfillment = $6';
    end if;
    if p_started_from is not null then
        v_where := v_where || ' and m.started_on >= $7';
    end if;
    if p_started_to is not null then
        v_where := v_where || ' and m.started_on <= $8';
    end if;
    if nullif(trim(p_search), '') is not null then
        v_pattern := '%' || replace(replace(replace(
            lower(regexp_replace(trim(p_search), '\s+', ' ', 'g')), '\', '\\'), '%', '\%'), '_', '\_') || '%';
        v_where := v_where || ' and m.patient_name_key like $9';
    end if;
    if p_after is not null then
        v_where := v_where || format(
            ' and (%s, m.id) %s (($10 ->> ''k'')::%s, ($10 ->> ''id'')::uuid)',
            v_key, case v_dir when 'asc' then '>' else '<' end, v_type
        );
    end if;

    return query execute format(
        $q$
        select
            m.id, m.practice_id, m.patient_id, pt.name, m.category_id, c.name, m.status,
            m.status_source, m.status_changed_at, m.started_on, m.last_paid_at, m.next_billing_on,
            m.canceled_at, m.amount::numeric, m.billing_interval, m.product_names,
            m.google_review_submitted, m.google_review_at, m.referral_source, m.fulfillment, m.notes,
            jsonb_build_object('k', %1$s, 'id', m.id)
        from app.memberships as m
        inner join app.patients as pt on pt.id = m.patient_id
        inner join app.categories as c on c.id = m.category_id
        where %2$s
        order by %1$s %3$s, m.id %3$s
        limit $11
        $q$,
        v_key, v_where, v_dir
    )
    using p_practice_id, v_category, p_status, p_google_review, p_referral_source, p_fulfillment,
        p_started_from, p_started_to, v_pattern, p_after, v_limit;
end
$$;
comment on function api.list_memberships(
    uuid, text, text[], boolean, text, text, date, date, text, text, jsonb, integer
) is
'Memberships of a practice for the dashboard: tab, filters, name search, sort, keyset page (cursor). '
'One-time purchases only when p_status asks for one_time.';

-- The one-time purchases list: the members' list with status one_time, every other filter,
-- the sort and the keyset pages the same. p_tab: 'all' or a programme id.
create function api.list_one_time_purchases(
    p_practice_id uuid,
    p_tab text default 'all',
    p_google_review boolean default null,
    p_referral_source text default null,
    p_fulfillment text default null,
    p_started_from date default null,
    p_started_to date default null,
    p_search text default null,
    p_sort text default 'name',
    p_after jsonb default null,
    p_limit integer default 50
)
returns table (
    id uuid,
    practice_id uuid,
    patient_id uuid,
    patient_name text,
    category_id uuid,
    category_name text,
    status text,
    status_source text,
    status_changed_at timestamptz,
    started_on date,
    last_paid_at timestamptz,
    next_billing_on date,
    canceled_at timestamptz,
    amount numeric,
    billing_interval text,
    product_names text[],
    google_review_submitted boolean,
    google_review_at timestamptz,
    referral_source text,
    fulfillment text,
    notes text,
    cursor jsonb
)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
    if coalesce(p_tab, 'all') = 'cancellations' then
        raise exception 'p_tab must be all or a programme id' using errcode = '22023';
    end if;
    return query
    select *
    from api.list_memberships(
        p_practice_id, p_tab, array['one_time'], p_google_review, p_referral_source, p_fulfillment,
        p_started_from, p_started_to, p_search, p_sort, p_after, p_limit
    );
end
$$;
comment on function api.list_one_time_purchases(
    uuid, text, boolean, text, text, date, date, text, text, jsonb, integer
) is
'One-time purchases (patient x programme without recurring evidence) of a practice: the members'' '
'list filters, sort and keyset pages; p_tab all or a programme id.';
grant execute on function api.list_one_time_purchases(
    uuid, text, boolean, text, text, date, date, text, text, jsonb, integer
) to authenticated;

-- ---------------------------------------------------------------------------
-- Tab counts: members only (the counters keep one_time in a status row of its own).
-- ---------------------------------------------------------------------------
create or replace function api.membership_tab_counts(p_practice_id uuid)
returns table (tab text, category_id uuid, label text, sort_order integer, member_count bigint)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with per_category as (
        select
            mc.category_id,
            sum(mc.member_count) as n,
            sum(mc.member_count) filter (where mc.status in ('paused', 'canceled')) as cancels
        from app.membership_counts as mc
        where mc.practice_id = p_practice_id and mc.status <> 'one_time'
        group by mc.category_id
    )

    select 'all', null::uuid, 'All', 0, coalesce(sum(pc.n), 0)::bigint
    from per_category as pc
    union all
    select c.id::text, c.id, c.name, c.sort_order, coalesce(pc.n, 0)::bigint
    from app.categories as c
    left join per_category as pc on c.id = pc.category_id
    where c.practice_id = p_practice_id
    union all
    select 'cancellations', null::uuid, 'Cancellations', 100000, coalesce(sum(pc.cancels), 0)::bigint
    from per_category as pc
    order by 4, 3;
end
$$;
comment on function api.membership_tab_counts(uuid) is
'One row per dashboard tab (All, each programme, Cancellations) with its membership count, '
'read from the maintained counters; one-time purchases are not memberships and not counted.';

create function api.one_time_purchase_counts(p_practice_id uuid)
returns table (tab text, category_id uuid, label text, sort_order integer, purchase_count bigint)
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
    return query
    with per_category as (
        select mc.category_id, sum(mc.member_count) as n
        from app.membership_counts as mc
        where mc.practice_id = p_practice_id and mc.status = 'one_time'
        group by mc.category_id
    )

    select 'all', null::uuid, 'All', 0, coalesce(sum(pc.n), 0)::bigint
    from per_category as pc
    union all
    select c.id::text, c.id, c.name, c.sort_order, coalesce(pc.n, 0)::bigint
    from app.categories as c
    left join per_category as pc on c.id = pc.category_id
    where c.practice_id = p_practice_id
    order by 4, 3;
end
$$;
comment on function api.one_time_purchase_counts(uuid) is
'One row per tab of the one-time purchases list (All, each programme): patients x programmes '
'with one-time purchases only, read from the maintained counters.';
grant execute on function api.one_time_purchase_counts(uuid) to authenticated;

-- ---------------------------------------------------------------------------
-- api.memberships: four columns added at the end (names unchanged; api.patient_detail shows them).
-- ---------------------------------------------------------------------------
create or replace view api.memberships with (security_invoker = true) as
select
    m.id,
    m.practice_id,
    m.patient_id,
    pt.name as patient_name,
    m.category_id,
    c.name as category_name,
    m.status,
    m.status_source,
    m.status_changed_at,
    m.started_on,
    m.last_paid_at,
    m.next_billing_on,
    m.canceled_at,
    m.amount,
    m.billing_interval,
    m.product_names,
    m.google_review_submitted,
    m.google_review_at,
    m.referral_source,
    m.fulfillment,
    m.notes,
    m.status <> 'one_time' as is_member,
    m.treated_as_member,
    m.billing_period,
    m.billing_period_source
from app.memberships as m
inner join app.patients as pt on m.patient_id = pt.id
inner join app.categories as c on m.category_id = c.id;
comment on view api.memberships is
'Memberships with patient and programme names; is_member false: a one-time purchase (status one_time).';

-- ---------------------------------------------------------------------------
-- Metrics: api.practice_metrics (20261129130100) with
--   MRR normalised by each membership's billing period (contract, spacing, its interval
--     name, else the practice default: private.membership_billing_period's rule, inline);
--   new members: only memberships that were ever active (a one-time purchase is never new);
--   one column added at the end: delinquency_churned (lapses in the period, part of canceled).
-- The return type changes (a column added), so the function is dropped and created again.
-- Revenue (one-time purchases apart from recurring sales) is api.practice_revenue below: it
-- reads every sale of the period with its invoice lines, which for a year of a large practice
-- costs several times what these metrics cost (measured: ~0.8 s against ~0.2 s for 33,000
-- sales), so the metrics the dashboard shows first do not wait for it.
-- ---------------------------------------------------------------------------
drop function api.practice_metrics(uuid, date, date);
create function api.practice_metrics(p_practice_id uuid, p_from date, p_to date)
returns table (
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
    delinquency_churned bigint
)
language sql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    with interval_names (name, period) as (
        -- private.billing_period's names (unknown names: the practice's default)
        values
        ('daily', interval '1 day'), ('weekly', interval '7 days'), ('biweekly', interval '14 days'),
        ('monthly', interval '1 month'), ('quarterly', interval '3 months'),
        ('semiannually', interval '6 months'), ('yearly', interval '1 year'), ('annually', interval '1 year'),
        ('annual', interval '1 year')
    ),
    bounds as (
        select
            (p_from::timestamp at time zone p.timezone) as t0,
            ((p_to + 1)::timestamp at time zone p.timezone) as t1,
            p.timezone,
            d.period as default_period
        from app.practices as p
        left join interval_names as d on d.name = p.default_billing_interval
        where p.id = p_practice_id
    ),
    ev as (
        -- one row per membership with history: what the metrics need from its events
        select
            x.membership_id,
            min(x.new_status) filter (where x.evidence_at < b.t0 and x.next_at >= b.t0) as status_start,
            min(x.new_status) filter (where x.evidence_at < b.t1 and x.next_at >= b.t1) as status_end,
            min(x.evidence_at) filter (where x.new_status = 'active') as first_active_event_at,
            bool_or(
                x.new_status = 'canceled'
                and x.evidence_at >= b.t0 and x.evidence_at < b.t1
            ) as canceled_in,
            bool_or(
                x.new_status = 'canceled' and x.source = 'system' and x.reason = 'lapsed'
                and x.evidence_at >= b.t0 and x.evidence_at < b.t1
            ) as lapsed_in,
            bool_or(
                x.new_status = 'active'
                and coalesce(x.old_status in ('canceled', 'paused'), false)
                and x.evidence_at >= b.t0 and x.evidence_at < b.t1
            ) as reactivated_in
        from (
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
        ) as x
        cross join bounds as b
        group by x.membership_id
    ),
    ms as (
        select
            m.category_id,
            -- monthly amount (client roles execute no private function, so inline): months
            -- divide (quarterly 1/3, yearly 1/12), days count 52 weeks a year (weekly 52/12)
            round(coalesce(m.amount, 0) / greatest(
                extract(year from per.period) * 12 + extract(month from per.period)
                + extract(day from per.period) * 12 / 364.0,
                0.01
            ), 2) as monthly,
            ev.status_start,
            ev.status_end,
            case when ev.first_active_event_at is not null or m.status <> 'one_time' then
                least((m.started_on::timestamp at time zone b.timezone), ev.first_active_event_at)
            end as first_active_at,
            coalesce(ev.canceled_in, false) as canceled_in,
            coalesce(ev.lapsed_in, false) as lapsed_in,
            coalesce(ev.reactivated_in, false) as reactivated_in,
            b.t0,
            b.t1
        from app.memberships as m
        cross join bounds as b
        left join ev on ev.membership_id = m.id
        left join interval_names as own on own.name = lower(trim(m.billing_interval))
        cross join lateral (
            select coalesce(m.billing_period, own.period, b.default_period) as period
        ) as per
        where m.practice_id = p_practice_id
    ),
    per_category as (
        select
            ms.category_id,
            count(*) filter (where ms.status_start = 'active') as active_at_start,
            count(*) filter (where ms.status_end = 'active') as active_at_end,
            count(*) filter (where ms.status_end = 'past_due') as past_due_at_end,
            sum(ms.monthly) filter (where ms.status_end in ('active', 'past_due')) as mrr,
            count(*) filter (where ms.first_active_at >= ms.t0 and ms.first_active_at < ms.t1) as new_members,
            count(*) filter (where ms.canceled_in) as canceled,
            count(*) filter (where ms.lapsed_in) as lapsed,
            count(*) filter (where ms.reactivated_in) as reactivated
        from ms
        group by ms.category_id
    )

    select
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
        coalesce(sum(pc.lapsed), 0)::bigint
    from app.categories as c
    left join per_category as pc on pc.category_id = c.id
    where c.practice_id = p_practice_id
        and (c.kind = 'programme' or pc.category_id is not null)
    group by grouping sets ((c.id, c.name, c.sort_order), ())
    order by grouping(c.id), c.sort_order, c.name
$$;
comment on function api.practice_metrics(uuid, date, date) is
'Per programme and in total over [p_from, p_to] (practice time zone): active at start and end, '
'past due at end, MRR (members only), new, canceled, reactivated, churn rate, delinquency churn '
'(lapsed) (docs/memberships.md).';
grant execute on function api.practice_metrics(uuid, date, date) to authenticated;

-- ---------------------------------------------------------------------------
-- Revenue: one-time purchases apart from recurring sales
-- ---------------------------------------------------------------------------
create function api.practice_revenue(p_practice_id uuid, p_from date, p_to date)
returns table (
    category_id uuid,
    category_name text,
    one_time_purchases bigint,
    one_time_revenue numeric,
    recurring_sales bigint,
    recurring_revenue numeric
)
language sql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    with bounds as (
        select
            (p_from::timestamp at time zone p.timezone) as t0,
            ((p_to + 1)::timestamp at time zone p.timezone) as t1
        from app.practices as p
        where p.id = p_practice_id
    ),
    sales as (
        -- successful sales of the period, each with whether MX billed it as recurring
        select
            p.id,
            (
                p.source = 'Recurring'
                or exists (select from app.contract_payments as cp where cp.payment_id = p.id)
            ) as recurring
        from app.payments as p
        cross join bounds as b
        where p.practice_id = p_practice_id
            and p.mx_created_at >= b.t0 and p.mx_created_at < b.t1
            and p.status in ('Approved', 'Settled') and p.type in ('Sale', 'SaleCompletion')
    ),
    revenue as (
        select
            l.category_id,
            count(distinct s.id) filter (where not s.recurring) as one_time_purchases,
            sum(l.total_amount) filter (where not s.recurring) as one_time_revenue,
            count(distinct s.id) filter (where s.recurring) as recurring_sales,
            sum(l.total_amount) filter (where s.recurring) as recurring_revenue
        from sales as s
        inner join app.payment_invoices as pi on s.id = pi.payment_id
        inner join app.invoice_lines as l on pi.invoice_id = l.invoice_id
        group by l.category_id
    )

    select
        c.id,
        coalesce(c.name, 'All'),
        coalesce(sum(r.one_time_purchases), 0)::bigint,
        coalesce(sum(r.one_time_revenue), 0)::numeric(12, 2),
        coalesce(sum(r.recurring_sales), 0)::bigint,
        coalesce(sum(r.recurring_revenue), 0)::numeric(12, 2)
    from app.categories as c
    left join revenue as r on c.id = r.category_id
    where c.practice_id = p_practice_id
        and (c.kind = 'programme' or r.category_id is not null)
    group by grouping sets ((c.id, c.name, c.sort_order), ())
    order by grouping(c.id), c.sort_order, c.name
$$;
comment on function api.practice_revenue(uuid, date, date) is
'Per programme and in total over [p_from, p_to] (practice time zone): successful sales split into '
'one-time purchases (not billed as recurring) and recurring sales, counts and the sum of their '
'invoice lines in the programme; money taken, kept apart from MRR (docs/memberships.md).';
grant execute on function api.practice_revenue(uuid, date, date) to authenticated;
