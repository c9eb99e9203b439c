-- started_on is the practice's local date. private.refresh_membership_from_payments cast the
-- first payment's timestamptz to a date in the session's time zone (UTC on the server), so a
-- membership first paid at 7:51 PM in Chicago (01:51 UTC the next day) "started" a day later
-- than the dashboard's "last paid" time said. Every date it derives from a timestamp (first
-- payment, first recurring payment, first repeat purchase) is now taken at the practice's time
-- zone; a contract's start_date is already MX's (local) date. Body: the current definition
-- (supabase/schema/private.sql) with only those casts changed. The "started between" filters
-- compare dates with started_on, so they now mean local days, like "last paid between".
--
-- Existing rows: memberships whose started_on is the UTC date of one of the patient's payments
-- that falls on another day in the practice's zone are rebuilt from their payments (with the
-- worker's per-patient lock). At the benchmark's scale (300,000 memberships, 1,000,000
-- payments) that is about a quarter of them.

create or replace function private.refresh_membership_from_payments(p_practice_id uuid, p_patient_id uuid, p_category_id uuid) returns uuid
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practice app.practices;
    v_default interval;
    v_zone text;  -- the practice's time zone: started_on is the practice's local date
    v_id uuid;
    v_first_paid timestamptz;
    v_last_paid timestamptz;
    v_recurring_since timestamptz;
    v_first_recurring_paid timestamptz;
    v_last_recurring_paid timestamptz;
    v_median_gap double precision;
    v_repeat_since timestamptz;
    v_amount_at timestamptz;
    v_last_amount numeric(12, 2);
    v_products text[];
    v_evidence_status text;
    v_evidence_at timestamptz;
    v_spacing interval;
    v_contract_start date;
    v_status text;
    v_source text;
    v_status_at timestamptz;
begin
    select * into v_practice from app.practices where id = p_practice_id;
    v_default := private.billing_period(v_practice.default_billing_interval);
    v_zone := coalesce(v_practice.timezone, 'UTC');

    -- payments of this patient that paid a line of this programme
    with pay as (
        select distinct on (p.id)
            p.id,
            p.mx_created_at as at,
            (p.status in ('Approved', 'Settled') and p.type in ('Sale', 'SaleCompletion')) as succeeded,
            p.status = 'Declined' as declined,
            (
                p.source = 'Recurring'
                or exists (select from app.contract_payments as cp where cp.payment_id = p.id)
            ) as recurring
        from app.payments as p
        inner join app.payment_invoices as pi on pi.payment_id = p.id
        inner join app.invoice_lines as l on l.invoice_id = pi.invoice_id
        where p.patient_id = p_patient_id and l.category_id = p_category_id
    ),
    gaps as (
        select
            pay.at,
            pay.recurring,
            pay.at - lag(pay.at) over (partition by pay.recurring order by pay.at, pay.id) as gap
        from pay
        where pay.succeeded
    )
    select
        (select min(pay.at) from pay where pay.succeeded),
        (select max(pay.at) from pay where pay.succeeded),
        (select min(pay.at) from pay where pay.recurring and (pay.succeeded or pay.declined)),
        (select min(pay.at) from pay where pay.recurring and pay.succeeded),
        (select max(pay.at) from pay where pay.recurring and pay.succeeded),
        (
            select percentile_cont(0.5) within group (order by extract(epoch from g.gap))
            from gaps as g where g.recurring and g.gap is not null
        ),
        (
            select min(g.at) from gaps as g
            where not g.recurring and g.gap <= v_default * 1.5 and v_practice.count_repeat_purchases
        ),
        (
            select case when x.succeeded then 'active' else 'past_due' end
            from pay as x
            where x.succeeded or (x.declined and x.recurring)
            order by x.at desc, x.id desc
            limit 1
        ),
        (select max(pay.at) from pay where pay.succeeded or (pay.declined and pay.recurring))
    into v_first_paid, v_last_paid, v_recurring_since, v_first_recurring_paid, v_last_recurring_paid,
        v_median_gap, v_repeat_since, v_evidence_status, v_evidence_at;

    if v_evidence_status is null and v_first_paid is null and v_recurring_since is null then
        return null;  -- nothing in this programme to build a membership on
    end if;

    -- the amount of the newest recurring payment, else of the newest payment
    v_amount_at := coalesce(v_last_recurring_paid, v_last_paid);
    select
        sum(l.total_amount),
        array_agg(distinct l.product_name order by l.product_name)
    into v_last_amount, v_products
    from app.payments as p
    inner join app.payment_invoices as pi on pi.payment_id = p.id
    inner join app.invoice_lines as l on l.invoice_id = pi.invoice_id
    where p.patient_id = p_patient_id and l.category_id = p_category_id
        and p.mx_created_at = v_amount_at;

    v_spacing := case when v_median_gap is not null then private.billing_period_from_spacing(v_median_gap) end;

    select c.start_date into v_contract_start
    from app.memberships as m
    inner join app.contracts as c on c.id = m.contract_id
    where m.practice_id = p_practice_id and m.patient_id = p_patient_id and m.category_id = p_category_id;

    insert into app.memberships as m (
        practice_id, patient_id, category_id, status, status_source, status_changed_at,
        started_on, last_paid_at, amount, product_names, payment_status, payment_evidence_at,
        recurring_since, repeat_since, billing_period, billing_period_source
    )
    values (
        p_practice_id, p_patient_id, p_category_id, 'one_time', 'payment', coalesce(v_evidence_at, now()),
        (v_first_paid at time zone v_zone)::date, v_last_paid, v_last_amount,
        coalesce(v_products, '{}'), v_evidence_status, v_evidence_at,
        v_recurring_since, v_repeat_since, v_spacing, case when v_spacing is not null then 'spacing' end
    )
    on conflict (practice_id, patient_id, category_id) do update
    set started_on = case
            -- a member since its first recurring evidence; a one-time buyer since the first purchase
            when m.contract_id is not null or excluded.recurring_since is not null
                or excluded.repeat_since is not null or m.treated_as_member
                then coalesce(
                    least(
                        (v_first_recurring_paid at time zone v_zone)::date,
                        v_contract_start,
                        ((case when m.treated_as_member then v_first_paid end) at time zone v_zone)::date,
                        (excluded.repeat_since at time zone v_zone)::date
                    ),
                    excluded.started_on
                )
            else excluded.started_on
        end,
        last_paid_at = excluded.last_paid_at,
        amount = coalesce(excluded.amount, m.amount),
        product_names = case
            when excluded.product_names = '{}' then m.product_names
            else excluded.product_names
        end,
        payment_status = excluded.payment_status,
        payment_evidence_at = excluded.payment_evidence_at,
        recurring_since = excluded.recurring_since,
        repeat_since = excluded.repeat_since,
        billing_period = case when m.billing_period_source = 'contract' then m.billing_period else excluded.billing_period end,
        billing_period_source = case
            when m.billing_period_source = 'contract' then m.billing_period_source
            else excluded.billing_period_source
        end
    returning m.id into v_id;

    if not exists (select from app.membership_events where membership_id = v_id) then
        -- a new row: its first status is what its evidence says, recorded once
        select r.status, r.source, r.evidence_at into v_status, v_source, v_status_at
        from app.memberships as m
        cross join lateral private.resolve_membership_status(m) as r
        where m.id = v_id;
        update app.memberships as m
        set status = v_status,
            status_source = v_source,
            status_changed_at = coalesce(v_status_at, m.status_changed_at),
            started_on = case
                when v_status <> 'one_time' then coalesce(
                    least((v_first_recurring_paid at time zone v_zone)::date, (v_repeat_since at time zone v_zone)::date), m.started_on
                )
                else m.started_on
            end
        where m.id = v_id and (m.status is distinct from v_status or m.status_source is distinct from v_source);
        insert into app.membership_events (
            practice_id, membership_id, old_status, new_status, source, reason, evidence_at
        )
        select m.practice_id, m.id, null, m.status, m.status_source,
            case when m.status = 'one_time' then 'no recurring evidence' end, m.status_changed_at
        from app.memberships as m where m.id = v_id;
    end if;
    perform private.settle_membership_status(v_id);
    return v_id;
end
$$;

comment on function private.refresh_membership_from_payments(uuid, uuid, uuid) is
'Rebuild a patient x programme''s evidence from stored payments: recurring (source Recurring or billed by a contract), repeat purchases (opt-in), start (the practice''s local date), last paid, amount, billing period from payment spacing; then settle its status (one_time without recurring evidence).';

do $$
declare
    v_row record;
begin
    for v_row in
        select m.practice_id, m.patient_id, m.category_id
        from app.memberships as m
        inner join app.practices as p on m.practice_id = p.id
        where m.started_on is not null
            and exists (
                select from app.payments as pay
                where pay.patient_id = m.patient_id
                    and (pay.mx_created_at at time zone 'UTC')::date = m.started_on
                    and (pay.mx_created_at at time zone p.timezone)::date <> m.started_on
            )
        order by m.patient_id, m.category_id
    loop
        -- the worker's per-patient lock, taken and given back per row: held to the end of this
        -- one transaction, tens of thousands of them overflow the lock table (out of shared
        -- memory); the rows' own locks keep the worker off them until the commit
        perform pg_catalog.pg_advisory_lock(pg_catalog.hashtextextended(v_row.patient_id::text, 1));
        perform private.refresh_membership_from_payments(v_row.practice_id, v_row.patient_id, v_row.category_id);
        perform pg_catalog.pg_advisory_unlock(pg_catalog.hashtextextended(v_row.patient_id::text, 1));
    end loop;
end
$$;
