-- Memberships: one patient in one programme at one practice, its status, the evidence
-- the status comes from, the practice's workflow fields, and the history of changes.
--
-- Status precedence (README "Membership status"):
--   1. a staff decision (pause, cancel, reactivate) holds until MX changes the
--      contract's status after that decision (a reactivation also ends on newer
--      failure evidence: 20261129090200_create_membership_status_actions.sql);
--   2. else the contract's status when it says paused (Inactive) or canceled
--      (Cancelled, Deleted, Completed);
--   3. else what the newest payment evidence shows: a successful sale -> active,
--      a failed recurring payment -> past_due;
--   4. else the contract's Active -> active.
-- Every input carries its own time, so evidence that arrives late never wins over
-- newer evidence of the same source.

create table app.memberships (
    id uuid primary key default gen_random_uuid(),
    practice_id uuid not null references app.practices (id) on delete cascade,
    patient_id uuid not null references app.patients (id) on delete cascade,
    category_id uuid not null,
    status text not null check (status in ('active', 'past_due', 'paused', 'canceled')),
    status_source text not null check (status_source in ('payment', 'contract', 'staff')),
    status_changed_at timestamptz not null default now(),
    started_on date,
    last_paid_at timestamptz,
    next_billing_on date,
    canceled_at timestamptz,
    amount numeric(12, 2),
    billing_interval text,
    contract_id bigint references app.contracts (id) on delete set null,
    product_names text[] not null default '{}',
    -- evidence, each with its own time
    payment_status text check (payment_status in ('active', 'past_due')),
    payment_evidence_at timestamptz,
    contract_status text,
    contract_status_changed_at timestamptz,
    staff_status text check (staff_status in ('active', 'paused', 'canceled')),
    staff_reason text,
    staff_user_id uuid references auth.users (id) on delete set null,
    staff_decided_at timestamptz,
    -- the practice's workflow fields
    google_review_submitted boolean not null default false,
    google_review_at timestamptz,
    referral_source text,
    fulfillment text check (fulfillment in ('in_office', 'mail_out')),
    notes text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (practice_id, patient_id, category_id),
    foreign key (practice_id, category_id) references app.categories (practice_id, id)
);
create index memberships_patient_id_idx on app.memberships (patient_id);
create index memberships_practice_status_idx on app.memberships (practice_id, status);
create index memberships_practice_category_status_idx
on app.memberships (practice_id, category_id, status);
create index memberships_contract_id_idx on app.memberships (contract_id) where contract_id is not null;
comment on table app.memberships is
'One patient in one programme at one practice: status, dates, evidence and workflow fields.';

create trigger memberships_touch_updated_at
before update on app.memberships
for each row execute function private.touch_updated_at();

create table app.membership_events (
    id bigint generated always as identity primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    membership_id uuid not null references app.memberships (id) on delete cascade,
    old_status text,
    new_status text not null,
    source text not null check (source in ('payment', 'contract', 'staff')),
    reason text,
    actor_user_id uuid references auth.users (id) on delete set null,
    evidence_at timestamptz not null,
    recorded_at timestamptz not null default now()
);
create index membership_events_membership_idx on app.membership_events (membership_id, id);
create index membership_events_practice_recorded_idx
on app.membership_events (practice_id, recorded_at);
comment on table app.membership_events is 'Every status change of a membership: old, new, source, time, actor.';

alter table app.memberships enable row level security;
alter table app.membership_events enable row level security;

grant select on app.memberships, app.membership_events to authenticated;

create policy memberships_select on app.memberships
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy membership_events_select on app.membership_events
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

-- ---------------------------------------------------------------------------
-- MX contract status -> membership status (null: not a status we act on)
-- ---------------------------------------------------------------------------
create function private.contract_membership_status(mx_status text)
returns text
language sql
immutable
set search_path = ''
as $$
    select case lower(trim(mx_status))
        when 'active' then 'active'
        when 'inactive' then 'paused'
        when 'cancelled' then 'canceled'
        when 'canceled' then 'canceled'
        when 'deleted' then 'canceled'
        when 'completed' then 'canceled'
    end
$$;
comment on function private.contract_membership_status(text) is
'Membership status an MX contract status implies; null for values never seen before.';

create function private.resolve_membership_status(m app.memberships)
returns table (status text, source text, evidence_at timestamptz)
language sql
stable
set search_path = ''
as $$
    select s.status, s.source, s.evidence_at
    from (
        select m.staff_status as status, 'staff' as source, m.staff_decided_at as evidence_at, 1 as rank
        where m.staff_status is not null
            and (
                m.contract_status_changed_at is null
                or m.contract_status_changed_at <= m.staff_decided_at
            )
        union all
        select private.contract_membership_status(m.contract_status), 'contract', m.contract_status_changed_at, 2
        where private.contract_membership_status(m.contract_status) in ('paused', 'canceled')
        union all
        select m.payment_status, 'payment', m.payment_evidence_at, 3
        where m.payment_status is not null
        union all
        select 'active', 'contract', m.contract_status_changed_at, 4
        where private.contract_membership_status(m.contract_status) = 'active'
    ) as s
    order by s.rank
    limit 1
$$;
comment on function private.resolve_membership_status(app.memberships) is
'Apply the status precedence to a membership''s evidence.';

-- Recompute the status of a membership from its evidence; record a change in the history.
create function private.settle_membership_status(p_membership_id uuid, p_actor uuid default null)
returns text
language plpgsql
security definer
set search_path = ''
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
        case when v_source = 'staff' then v_m.staff_reason end,
        case when v_source = 'staff' then coalesce(p_actor, v_m.staff_user_id) end,
        coalesce(v_evidence_at, now())
    );
    return v_status;
end
$$;
comment on function private.settle_membership_status(uuid, uuid) is
'Recompute a membership''s status from its evidence and record any change.';

-- Payment evidence of one patient in one programme, recomputed from the stored payments.
-- Recomputing (rather than applying deltas) is what makes the order of events irrelevant.
create function private.refresh_membership_from_payments(
    p_practice_id uuid, p_patient_id uuid, p_category_id uuid
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_first_paid timestamptz;
    v_last_paid timestamptz;
    v_last_amount numeric(12, 2);
    v_products text[];
    v_evidence_status text;
    v_evidence_at timestamptz;
begin
    -- payments of this patient that paid a line of this programme
    with lines as (
        select distinct on (p.id)
            p.id, p.mx_created_at, p.status, p.type, p.source,
            (p.status in ('Approved', 'Settled') and p.type in ('Sale', 'SaleCompletion')) as succeeded,
            (p.status = 'Declined' and p.source = 'Recurring') as failed_recurring
        from app.payments as p
        inner join app.payment_invoices as pi on pi.payment_id = p.id
        inner join app.invoice_lines as l on l.invoice_id = pi.invoice_id
        where p.patient_id = p_patient_id and l.category_id = p_category_id
    )
    select
        min(mx_created_at) filter (where succeeded),
        max(mx_created_at) filter (where succeeded),
        (array_agg(case when succeeded or failed_recurring then
            case when succeeded then 'active' else 'past_due' end end
            order by mx_created_at desc, id desc) filter (where succeeded or failed_recurring))[1],
        max(mx_created_at) filter (where succeeded or failed_recurring)
    into v_first_paid, v_last_paid, v_evidence_status, v_evidence_at
    from lines;

    if v_evidence_status is null and v_first_paid is null then
        return null;  -- nothing in this programme to build a membership on
    end if;

    select
        sum(l.total_amount),
        array_agg(distinct l.product_name order by l.product_name)
    into v_last_amount, v_products
    from app.payments as p
    inner join app.payment_invoices as pi on pi.payment_id = p.id
    inner join app.invoice_lines as l on l.invoice_id = pi.invoice_id
    where p.patient_id = p_patient_id and l.category_id = p_category_id
        and p.mx_created_at = v_last_paid;

    insert into app.memberships (
        practice_id, patient_id, category_id, status, status_source, status_changed_at,
        started_on, last_paid_at, amount, product_names, payment_status, payment_evidence_at
    )
    values (
        p_practice_id, p_patient_id, p_category_id, v_evidence_status, 'payment', v_evidence_at,
        v_first_paid::date, v_last_paid, v_last_amount, coalesce(v_products, '{}'),
        v_evidence_status, v_evidence_at
    )
    on conflict (practice_id, patient_id, category_id) do update
    set started_on = excluded.started_on,
        last_paid_at = excluded.last_paid_at,
        amount = coalesce(excluded.amount, app.memberships.amount),
        product_names = case
            when excluded.product_names = '{}' then app.memberships.product_names
            else excluded.product_names
        end,
        payment_status = excluded.payment_status,
        payment_evidence_at = excluded.payment_evidence_at
    returning id into v_id;

    if not exists (select from app.membership_events where membership_id = v_id) then
        insert into app.membership_events (
            practice_id, membership_id, old_status, new_status, source, evidence_at
        )
        select practice_id, id, null, status, status_source, status_changed_at
        from app.memberships where id = v_id;
    end if;
    perform private.settle_membership_status(v_id);
    return v_id;
end
$$;
comment on function private.refresh_membership_from_payments(uuid, uuid, uuid) is
'Rebuild a membership''s payment evidence (start, last paid, amount, status) from stored payments.';
