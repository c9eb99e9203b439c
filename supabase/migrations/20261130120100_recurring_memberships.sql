-- Memberships mean recurring relationships (issue 14).
--
-- Before: any successful invoiced sale made a membership (private.refresh_membership_from_payments
-- ignored the payment's source), a membership without a contract was assumed monthly, and
-- past_due never ended. Now (docs/memberships.md, "What a membership is"):
--
--   member       a patient is a member of a programme when recurring evidence says so:
--                 an MX recurring contract that bills the programme (memberships.contract_id,
--                 or a payment listed by GET /contract/payment), a payment with
--                 source = 'Recurring' in it, a staff decision "treat as member"
--                 (api.treat_as_member), or, when the practice opts in
--                 (practices.count_repeat_purchases), two successful purchases in the
--                 programme no more than 1.5 billing intervals apart;
--   one_time     every other purchase (QuickPay, Terminal, Invoice, Order, API, Customer, ...):
--                 the row keeps the patient x programme purchase record and its workflow fields
--                 but has status 'one_time'. The members' lists, tab counts, MRR, churn and the
--                 overdue sweep never see it; api.list_one_time_purchases and
--                 api.one_time_purchase_counts list and count it; api.practice_metrics
--                 reports its revenue apart (one_time_revenue).
--   lapse        a membership past due longer than practices.lapse_days (default 30) with no
--                 successful payment since and no active contract is canceled by the sweep
--                 (source system, reason 'lapsed'): delinquency churn. A later payment
--                 supersedes the lapse evidence: active again, a reactivation.
--   interval     billing period from the contract (interval, every), else from the spacing of
--                 the recurring payments (median gap, nearest usual period), else the
--                 practice's default_billing_interval. The sweep and MRR use it.
--
-- Existing data: every patient x programme is recomputed at the end of this migration; the
-- NOTICE says how many memberships became one-time purchases.

-- ---------------------------------------------------------------------------
-- Practice settings
-- ---------------------------------------------------------------------------
alter table app.practices
add column lapse_days integer not null default 30 check (lapse_days between 1 and 365),
add column count_repeat_purchases boolean not null default false,
add column default_billing_interval text not null default 'monthly'
check (default_billing_interval in ('weekly', 'biweekly', 'monthly', 'quarterly', 'semiannually', 'yearly'));
comment on column app.practices.lapse_days is
'Days a membership may stay past due (no payment, no active contract) before it lapses to canceled.';
comment on column app.practices.count_repeat_purchases is
'Opt-in: two successful purchases in a programme within 1.5 billing intervals make a membership.';
comment on column app.practices.default_billing_interval is
'Billing interval of a membership when neither its contract nor its payments tell it.';

grant select (lapse_days, count_repeat_purchases, default_billing_interval) on app.practices to authenticated;
grant update (lapse_days, count_repeat_purchases, default_billing_interval) on app.practices to authenticated;

create or replace view api.practices with (security_invoker = true) as
select
    p.id,
    p.name,
    p.slug,
    p.timezone,
    p.auto_apply_suggestions,
    p.past_due_grace_days,
    p.created_at,
    p.lapse_days,
    p.count_repeat_purchases,
    p.default_billing_interval
from app.practices as p;
comment on view api.practices is 'Practices of the requesting user.';

-- ---------------------------------------------------------------------------
-- Membership columns
-- ---------------------------------------------------------------------------
alter table app.memberships drop constraint memberships_status_check;
alter table app.memberships add constraint memberships_status_check
check (status in ('active', 'past_due', 'paused', 'canceled', 'one_time'));

alter table app.memberships
add column recurring_since timestamptz,
add column repeat_since timestamptz,
add column treated_as_member boolean not null default false,
add column treated_as_member_reason text,
add column treated_as_member_by uuid references auth.users (id) on delete set null,
add column treated_as_member_at timestamptz,
add column lapsed_at timestamptz,
add column lapsed_basis_at timestamptz,
add column billing_period interval,
add column billing_period_source text check (billing_period_source in ('contract', 'spacing', 'default'));
comment on column app.memberships.recurring_since is
'Recurring evidence: the first payment in the programme that MX billed as recurring (source Recurring '
'or listed by a contract); null when there is none.';
comment on column app.memberships.repeat_since is
'Repeat evidence (practices.count_repeat_purchases): the purchase that came within 1.5 billing '
'intervals of the one before it.';
comment on column app.memberships.treated_as_member is
'Staff decision (api.treat_as_member): count this patient as a member without recurring billing.';
comment on column app.memberships.lapsed_at is
'System evidence: when the past-due membership lapsed (past due + practices.lapse_days).';
comment on column app.memberships.lapsed_basis_at is
'The payment evidence time the sweep saw when it lapsed the membership; the lapse holds while it is unchanged.';
comment on column app.memberships.billing_period is
'Billing period from the contract (interval, every) or the spacing of recurring payments; null: '
'the practice''s default_billing_interval.';
comment on column app.memberships.billing_period_source is 'Where billing_period comes from.';

create index memberships_practice_past_due_idx on app.memberships (practice_id) where status = 'past_due';

-- ---------------------------------------------------------------------------
-- Billing periods
-- ---------------------------------------------------------------------------
-- MX contract: interval Weekly | Monthly | Yearly | Once (and others), every "4 Weeks" or "2".
create function private.contract_billing_period(p_interval text, p_every text)
returns interval
language plpgsql
immutable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_every text := lower(trim(coalesce(p_every, '')));
    v_interval text := lower(trim(coalesce(p_interval, '')));
    v_n integer;
    v_unit text;
    v_base interval;
begin
    v_base := case v_interval
        when 'daily' then interval '1 day'
        when 'weekly' then interval '7 days'
        when 'biweekly' then interval '14 days'
        when 'monthly' then interval '1 month'
        when 'quarterly' then interval '3 months'
        when 'semiannually' then interval '6 months'
        when 'yearly' then interval '1 year'
        when 'annually' then interval '1 year'
        when 'annual' then interval '1 year'
    end;
    if v_every ~ '^[0-9]{1,3}\s*[a-z]+$' then
        v_n := substring(v_every from '^([0-9]+)')::integer;
        v_unit := rtrim(substring(v_every from '([a-z]+)$'), 's');
        if v_n > 0 and v_unit in ('day', 'week', 'month', 'year') then
            return v_n * case v_unit
                when 'day' then interval '1 day'
                when 'week' then interval '7 days'
                when 'month' then interval '1 month'
                else interval '1 year'
            end;
        end if;
    elsif v_every ~ '^[0-9]{1,3}$' and v_every::integer > 0 and v_base is not null then
        return v_every::integer * v_base;
    end if;
    return v_base;  -- 'Once' and unknown values: null (the contract does not say)
end
$$;
comment on function private.contract_billing_period(text, text) is
'Billing period an MX contract states (interval, every: "4 Weeks", "2"); null when it does not say.';

-- The usual period nearest to a median gap between payments (ratio distance).
create function private.billing_period_from_spacing(p_gap_seconds double precision)
returns interval
language sql
immutable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select c.period
    from (values
        (interval '7 days', 7.0), (interval '14 days', 14.0), (interval '1 month', 30.4375),
        (interval '2 months', 60.875), (interval '3 months', 91.3125), (interval '6 months', 182.625),
        (interval '1 year', 365.25)
    ) as c (period, days)
    where p_gap_seconds > 0
    order by abs(ln(p_gap_seconds / 86400.0 / c.days))
    limit 1
$$;
comment on function private.billing_period_from_spacing(double precision) is
'The usual billing period (weekly ... yearly) nearest to a gap between payments, in seconds.';

-- The period a membership bills at: its own (contract, spacing), else the text interval a
-- caller stored, else the practice's default.
create function private.membership_billing_period(
    p_billing_period interval, p_billing_interval text, p_default_interval text
)
returns interval
language sql
immutable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(
        p_billing_period,
        case when nullif(trim(p_billing_interval), '') is not null then private.billing_period(p_billing_interval) end,
        private.billing_period(p_default_interval)
    )
$$;
comment on function private.membership_billing_period(interval, text, text) is
'Billing period of a membership: contract/spacing period, else its stored interval name, else the practice default.';

-- A membership linked to a contract takes the contract's period (apply_contract sets
-- contract_id and billing_interval on every sync, so this follows every change).
create function private.set_contract_billing_period()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_period interval;
    v_start date;
begin
    if new.contract_id is not null then
        select private.contract_billing_period(c.billing_interval, c.every), c.start_date
        into v_period, v_start
        from app.contracts as c where c.id = new.contract_id;
        if v_period is not null then
            new.billing_period := v_period;
            new.billing_period_source := 'contract';
        end if;
        -- a one-time purchase the contract makes a member: a member since the contract started
        if tg_op = 'UPDATE' and old.contract_id is null and old.status = 'one_time' and v_start is not null then
            new.started_on := v_start;
        end if;
    end if;
    return new;
end
$$;
comment on function private.set_contract_billing_period() is
'Trigger: a membership billed by a contract bills at the contract''s period (interval, every); '
'a one-time purchase a contract turns into a membership starts when the contract started.';

create trigger memberships_contract_billing_period
before insert or update of contract_id, billing_interval on app.memberships
for each row execute function private.set_contract_billing_period();

-- ---------------------------------------------------------------------------
-- Status resolution
-- ---------------------------------------------------------------------------
create or replace function private.resolve_membership_status(m app.memberships)
returns table (status text, source text, evidence_at timestamptz)
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    with f as (
        select
            (
                m.contract_id is not null or m.recurring_since is not null
                or m.treated_as_member or m.repeat_since is not null
            ) as member,
            -- failure evidence newer than a staff reactivation ends that reactivation
            coalesce(
                m.payment_status = 'past_due' and m.payment_evidence_at > m.staff_decided_at, false
            ) as by_payment,
            coalesce(
                m.overdue_at > m.staff_decided_at
                and m.overdue_basis_at is not distinct from m.payment_evidence_at, false
            ) as by_overdue,
            coalesce(
                m.lapsed_at is not null
                and m.lapsed_basis_at is not distinct from m.payment_evidence_at
                and private.contract_membership_status(m.contract_status) is distinct from 'active',
                false
            ) as lapsed,
            m.staff_status is not null
            and (
                m.contract_status_changed_at is null
                or m.contract_status_changed_at <= m.staff_decided_at
            ) as staff_holds
    )

    select s.status, s.source, s.evidence_at
    from (
        -- not a member: a one-time purchase, whatever else is known
        select
            'one_time' as status,
            case when m.treated_as_member_at is not null then 'staff' else 'payment' end as source,
            coalesce(m.treated_as_member_at, m.last_paid_at, m.payment_evidence_at, m.created_at) as evidence_at,
            0 as rank
        from f
        where not f.member
        union all
        select m.staff_status, 'staff', m.staff_decided_at, 1
        from f
        where f.staff_holds
            and not (
                m.staff_status = 'active'
                and (f.by_payment or f.by_overdue or (f.lapsed and m.lapsed_at > m.staff_decided_at))
            )
        union all
        select
            case when f.lapsed and m.lapsed_at > m.staff_decided_at then 'canceled' else 'past_due' end,
            case
                when f.lapsed and m.lapsed_at > m.staff_decided_at then 'system'
                when f.by_payment then 'payment'
                else 'system'
            end,
            case
                when f.lapsed and m.lapsed_at > m.staff_decided_at then m.lapsed_at
                when f.by_payment then m.payment_evidence_at
                else m.overdue_at
            end,
            1
        from f
        where f.staff_holds and m.staff_status = 'active'
            and (f.by_payment or f.by_overdue or (f.lapsed and m.lapsed_at > m.staff_decided_at))
        union all
        select private.contract_membership_status(m.contract_status), 'contract', m.contract_status_changed_at, 2
        where private.contract_membership_status(m.contract_status) in ('paused', 'canceled')
        union all
        select 'canceled', 'system', m.lapsed_at, 3
        from f
        where f.lapsed
        union all
        select 'past_due', 'system', m.overdue_at, 4
        where m.overdue_at is not null
            and m.overdue_basis_at is not distinct from m.payment_evidence_at
        union all
        select m.payment_status, 'payment', m.payment_evidence_at, 5
        where m.payment_status is not null
        union all
        select 'active', 'contract', m.contract_status_changed_at, 6
        where private.contract_membership_status(m.contract_status) = 'active'
    ) as s
    order by s.rank
    limit 1
$$;
comment on function private.resolve_membership_status(app.memberships) is
'Apply the status precedence: not a member (no recurring evidence) -> one_time; staff decision; '
'contract paused/canceled; lapse (canceled, system); overdue; payment; contract active. '
'A staff reactivation ends when newer failure or lapse evidence arrives.';

-- Recompute the status of a membership from its evidence; record a change in the history.
-- (Replaces 20261129080500: the history row of a lapse carries reason 'lapsed', of a
-- one-time purchase 'no recurring evidence'.)
create or replace function private.settle_membership_status(p_membership_id uuid, p_actor uuid default null)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_m app.memberships;
    v_status text;
    v_source text;
    v_evidence_at timestamptz;
begin
    select * into v_m from app.memberships where id = p_membership_id for update;
    select r.status, r.source, r.evidence_at into v_status, v_source, v_evidence_at
    from private.resolve_membership_status(v_m) as r;
    if v_status is null or v_status = v_m.status then
        return v_m.status;
    end if;
    update app.memberships
    set status = v_status,
        status_source = v_source,
        status_changed_at = coalesce(v_evidence_at, now()),
        canceled_at = case when v_status = 'canceled' then coalesce(v_evidence_at, now()) end
    where id = p_membership_id;
    insert into app.membership_events (
        practice_id, membership_id, old_status, new_status, source, reason, actor_user_id, evidence_at
    )
    values (
        v_m.practice_id, v_m.id, v_m.status, v_status, v_source,
        case
            when v_status = 'one_time' and v_source = 'staff' then v_m.treated_as_member_reason
            when v_status = 'one_time' then 'no recurring evidence'
            when v_source = 'staff' then v_m.staff_reason
            when v_source = 'system' and v_status = 'canceled' then 'lapsed'
        end,
        case
            when v_source = 'staff' and v_status = 'one_time' then coalesce(p_actor, v_m.treated_as_member_by)
            when v_source = 'staff' then coalesce(p_actor, v_m.staff_user_id)
        end,
        coalesce(v_evidence_at, now())
    );
    return v_status;
end
$$;
comment on function private.settle_membership_status(uuid, uuid) is
'Recompute a membership''s status from its evidence and record any change (reason lapsed / no recurring evidence).';

-- ---------------------------------------------------------------------------
-- Evidence from the stored payments
-- ---------------------------------------------------------------------------
-- Recomputed from the stored payments (rather than applying deltas), so the order of events
-- does not matter. Recurring: source 'Recurring' or billed by a contract (GET
-- /contract/payment). Status evidence of a member: its newest successful payment (any
-- source: a member paying by hand stays active) or failed recurring payment.
create or replace function private.refresh_membership_from_payments(
    p_practice_id uuid, p_patient_id uuid, p_category_id uuid
)
returns uuid
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practice app.practices;
    v_default interval;
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
        v_first_paid::date, v_last_paid, v_last_amount,
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
                        (v_first_recurring_paid)::date,
                        v_contract_start,
                        (case when m.treated_as_member then v_first_paid end)::date,
                        (excluded.repeat_since)::date
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
                    least(v_first_recurring_paid::date, v_repeat_since::date), m.started_on
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
'Rebuild a patient x programme''s evidence from stored payments: recurring (source Recurring or '
'billed by a contract), repeat purchases (opt-in), start, last paid, amount, billing period from '
'payment spacing; then settle its status (one_time without recurring evidence).';

-- ---------------------------------------------------------------------------
-- Staff: "treat as member" (reversible, audited)
-- ---------------------------------------------------------------------------
grant update (treated_as_member, treated_as_member_reason) on app.memberships to authenticated;

create function private.stamp_member_decision()
returns trigger
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
    if coalesce(trim(new.treated_as_member_reason), '') = '' then
        raise exception 'a reason is required to treat a patient as a member or to undo it'
        using errcode = '22023';
    end if;
    if new.treated_as_member_by is not distinct from old.treated_as_member_by then
        new.treated_as_member_by := (select auth.uid());
    end if;
    if new.treated_as_member_at is not distinct from old.treated_as_member_at then
        new.treated_as_member_at := clock_timestamp();
    end if;
    return new;
end
$$;
comment on function private.stamp_member_decision() is
'Trigger: a "treat as member" decision needs a reason; record who decided and when.';

create trigger memberships_stamp_member_decision
before update of treated_as_member, treated_as_member_reason on app.memberships
for each row execute function private.stamp_member_decision();

create function private.settle_after_member_decision()
returns trigger
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
begin
    v_status := private.settle_membership_status(new.id, new.treated_as_member_by);
    -- audited like the workflow fields: who, when, old and new values (and the status after)
    insert into app.workflow_audit (practice_id, table_name, row_id, changed_by, changed_at, old_values, new_values)
    values (
        new.practice_id, 'memberships', new.id::text, new.treated_as_member_by, new.treated_as_member_at,
        jsonb_build_object(
            'treated_as_member', old.treated_as_member, 'treated_as_member_reason', old.treated_as_member_reason,
            'status', old.status
        ),
        jsonb_build_object(
            'treated_as_member', new.treated_as_member, 'treated_as_member_reason', new.treated_as_member_reason,
            'status', v_status
        )
    );
    return null;
end
$$;
comment on function private.settle_after_member_decision() is
'Trigger: after a "treat as member" decision, settle the status and audit it in app.workflow_audit.';

create trigger memberships_settle_after_member_decision
after update of treated_as_member, treated_as_member_reason on app.memberships
for each row execute function private.settle_after_member_decision();

create function api.treat_as_member(p_membership_id uuid, p_treat boolean, p_reason text)
returns text
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
begin
    if p_treat is null then
        raise exception 'p_treat must be true (treat as member) or false (undo)' using errcode = '22023';
    end if;
    if coalesce(trim(p_reason), '') = '' then
        raise exception 'a reason is required' using errcode = '22023';
    end if;
    update app.memberships set treated_as_member = p_treat, treated_as_member_reason = trim(p_reason)
    where id = p_membership_id;
    if not found then
        raise exception 'membership % not found', p_membership_id using errcode = 'P0002';
    end if;
    select m.status into v_status from app.memberships as m where m.id = p_membership_id;
    return v_status;
end
$$;
comment on function api.treat_as_member(uuid, boolean, text) is
'Staff: count a patient who pays by hand as a member of the programme (p_treat true) or undo it '
'(false); reason required; audited in api.workflow_audit (and the status change in the history); '
'returns the new status.';
grant execute on function api.treat_as_member(uuid, boolean, text) to authenticated;

-- A pause/cancel/reactivation is about a membership: a one-time purchase has none.
create or replace function api.set_membership_status(p_membership_id uuid, p_status text, p_reason text)
returns text
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_status text;
begin
    if p_status is null or p_status not in ('active', 'paused', 'canceled') then
        raise exception 'status must be active, paused or canceled' using errcode = '22023';
    end if;
    if coalesce(trim(p_reason), '') = '' then
        raise exception 'a reason is required' using errcode = '22023';
    end if;
    select m.status into v_status from app.memberships as m where m.id = p_membership_id;
    if v_status = 'one_time' then
        raise exception 'membership % is a one-time purchase: treat the patient as a member first '
            '(api.treat_as_member)', p_membership_id using errcode = '22023';
    end if;
    update app.memberships set staff_status = p_status, staff_reason = trim(p_reason)
    where id = p_membership_id;
    if not found then
        raise exception 'membership % not found', p_membership_id using errcode = 'P0002';
    end if;
    select m.status into v_status from app.memberships as m where m.id = p_membership_id;
    return v_status;
end
$$;
comment on function api.set_membership_status(uuid, text, text) is
'Staff: pause, cancel or reactivate (status active) a membership; reason required; returns the new '
'status. A one-time purchase is refused (api.treat_as_member first).';
