-- Membership status: staff decisions through the API and the overdue sweep.
--
-- Overdue is system evidence (source 'system'), stored apart from payment evidence:
--   overdue_at        when the membership became overdue (due date + grace, end of day,
--                     practice time zone)
--   overdue_basis_at  the payment evidence time the sweep saw; the system evidence holds only
--                     while the payment evidence is still that one, so any payment recorded
--                     afterwards (even one made earlier that arrived late) supersedes it.
-- Precedence (replaces private.resolve_membership_status, same signature):
--   1. staff decision, until MX changes the contract's status after it;
--   2. contract paused/canceled;
--   3. the overdue sweep (past_due, 'system') while its basis is current, else the newest
--      payment evidence;
--   4. contract Active.

alter table app.memberships
add column overdue_at timestamptz,
add column overdue_basis_at timestamptz;
comment on column app.memberships.overdue_at is 'System evidence: when the membership became overdue.';
comment on column app.memberships.overdue_basis_at is
'The payment evidence time the overdue sweep saw; the overdue evidence holds while it is unchanged.';

create or replace function private.resolve_membership_status(m app.memberships)
returns table (status text, source text, evidence_at timestamptz)
language sql
stable
set search_path = ''
as $$
    with failing as (
        -- failure evidence newer than a staff reactivation ends that reactivation
        select coalesce(
            m.payment_status = 'past_due' and m.payment_evidence_at > m.staff_decided_at, false
        ) as by_payment,
        coalesce(
            m.overdue_at > m.staff_decided_at
            and m.overdue_basis_at is not distinct from m.payment_evidence_at, false
        ) as by_overdue
    )
    select s.status, s.source, s.evidence_at
    from (
        select m.staff_status as status, 'staff' as source, m.staff_decided_at as evidence_at, 1 as rank
        from failing as f
        where m.staff_status is not null
            and (
                m.contract_status_changed_at is null
                or m.contract_status_changed_at <= m.staff_decided_at
            )
            and not (m.staff_status = 'active' and (f.by_payment or f.by_overdue))
        union all
        select
            'past_due',
            case when f.by_payment then 'payment' else 'system' end,
            case when f.by_payment then m.payment_evidence_at else m.overdue_at end,
            1
        from failing as f
        where m.staff_status = 'active'
            and (
                m.contract_status_changed_at is null
                or m.contract_status_changed_at <= m.staff_decided_at
            )
            and (f.by_payment or f.by_overdue)
        union all
        select private.contract_membership_status(m.contract_status), 'contract', m.contract_status_changed_at, 2
        where private.contract_membership_status(m.contract_status) in ('paused', 'canceled')
        union all
        select 'past_due', 'system', m.overdue_at, 3
        where m.overdue_at is not null
            and m.overdue_basis_at is not distinct from m.payment_evidence_at
        union all
        select m.payment_status, 'payment', m.payment_evidence_at, 4
        where m.payment_status is not null
        union all
        select 'active', 'contract', m.contract_status_changed_at, 5
        where private.contract_membership_status(m.contract_status) = 'active'
    ) as s
    order by s.rank
    limit 1
$$;
comment on function private.resolve_membership_status(app.memberships) is
'Apply the status precedence (staff, contract paused/canceled, overdue, payment, contract active); '
'a staff reactivation ends when newer failure evidence arrives.';

-- ---------------------------------------------------------------------------
-- Billing intervals
-- ---------------------------------------------------------------------------
create function private.billing_period(billing_interval text)
returns interval
language sql
immutable
set search_path = ''
as $$
    select case lower(coalesce(trim(billing_interval), ''))
        when 'daily' then interval '1 day'
        when 'weekly' then interval '7 days'
        when 'biweekly' then interval '14 days'
        when 'quarterly' then interval '3 months'
        when 'semiannually' then interval '6 months'
        when 'yearly' then interval '1 year'
        when 'annually' then interval '1 year'
        when 'annual' then interval '1 year'
        else interval '1 month'
    end
$$;
comment on function private.billing_period(text) is
'Length of one billing period (unknown or missing: monthly).';

-- ---------------------------------------------------------------------------
-- The overdue sweep (a scheduler calls it)
-- ---------------------------------------------------------------------------
create function private.mark_overdue_memberships(as_of timestamptz default now())
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_changed integer := 0;
begin
    for v_id in
        with due as (
            select
                m.id,
                m.payment_evidence_at,
                (
                    (
                        coalesce(
                            m.next_billing_on,
                            ((m.last_paid_at at time zone p.timezone) + private.billing_period(m.billing_interval))::date
                        ) + p.past_due_grace_days + 1
                    )::timestamp at time zone p.timezone
                ) as overdue_at
            from app.memberships as m
            inner join app.practices as p on p.id = m.practice_id
            where m.status = 'active'
                and (m.next_billing_on is not null or m.last_paid_at is not null)
        )
        update app.memberships as m
        set overdue_at = d.overdue_at, overdue_basis_at = d.payment_evidence_at
        from due as d
        where m.id = d.id
            and d.overdue_at <= as_of
            and (m.overdue_at is null or m.overdue_basis_at is distinct from m.payment_evidence_at)
        returning m.id
    loop
        if private.settle_membership_status(v_id) = 'past_due' then
            v_changed := v_changed + 1;
        end if;
    end loop;
    return v_changed;
end
$$;
comment on function private.mark_overdue_memberships(timestamptz) is
'Scheduler: active memberships whose next billing date (else last payment + interval) plus the '
'practice''s grace days is past become past_due (source system); returns how many changed.';

-- ---------------------------------------------------------------------------
-- Staff decisions
-- ---------------------------------------------------------------------------
-- A staff member writes staff_status and staff_reason (column grant, update policy for
-- any member); triggers stamp who and when, and settle the status.
grant update (staff_status, staff_reason) on app.memberships to authenticated;

create policy memberships_update on app.memberships
for update to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]))
with check (practice_id = any((select private.current_practice_ids())::uuid[]));

create function private.stamp_staff_decision()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    if new.staff_status is not null and coalesce(trim(new.staff_reason), '') = '' then
        raise exception 'a reason is required for a staff decision' using errcode = '22023';
    end if;
    -- clients cannot write these two columns; a server-side writer that sets them is kept
    if new.staff_user_id is not distinct from old.staff_user_id then
        new.staff_user_id := (select auth.uid());
    end if;
    if new.staff_decided_at is not distinct from old.staff_decided_at then
        new.staff_decided_at := clock_timestamp();
    end if;
    return new;
end
$$;
comment on function private.stamp_staff_decision() is
'Trigger: a staff decision needs a reason; record who decided and when.';

create trigger memberships_stamp_staff_decision
before update of staff_status, staff_reason on app.memberships
for each row execute function private.stamp_staff_decision();

create function private.settle_after_staff_decision()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    perform private.settle_membership_status(new.id, new.staff_user_id);
    return null;
end
$$;
comment on function private.settle_after_staff_decision() is
'Trigger: settle a membership''s status after a staff decision (history row with the actor).';

create trigger memberships_settle_after_staff_decision
after update of staff_status, staff_reason on app.memberships
for each row execute function private.settle_after_staff_decision();

create function api.set_membership_status(p_membership_id uuid, p_status text, p_reason text)
returns text
language plpgsql
security invoker
set search_path = ''
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
'Staff: pause, cancel or reactivate (status active) a membership; reason required; returns the new status.';
grant execute on function api.set_membership_status(uuid, text, text) to authenticated;
