-- The membership sweep, one practice at a time (issues 14 and 12 item 4).
--
-- private.sweep_memberships(as_of) replaces the single statement of
-- private.mark_overdue_memberships (20261129090200), which converted every practice's dates
-- in one UPDATE: one practice's bad data (an unknown time zone, say) raised and stopped the
-- sweep of all. Now each practice runs in its own subtransaction; a failure rolls back that
-- practice only and is returned as a row with its error, which the worker's scheduler logs
-- (worker/scheduler.py) and private.mark_overdue_memberships raises as a WARNING.
--
-- Per practice, two steps:
--   overdue  an active membership whose next billing date (else last payment + its billing
--            period: contract, payment spacing, else the practice's default interval) plus
--            past_due_grace_days has ended (end of that day, practice time zone) becomes
--            past_due (source system);
--   lapse    a past_due membership past due for longer than lapse_days (end of that day)
--            with no active contract becomes canceled (source system, reason 'lapsed');
--            any payment recorded afterwards supersedes it (the basis check).
-- One-time purchases (status one_time) are never active or past_due: the sweep never sees them.

create function private.sweep_memberships(p_as_of timestamptz default now())
returns table (practice_id uuid, practice_slug text, marked_past_due integer, lapsed integer, error text)
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practice record;
    v_id uuid;
    v_past_due integer;
    v_lapsed integer;
    v_error text;
begin
    for v_practice in
        select p.id, p.slug from app.practices as p order by p.slug
    loop
        v_past_due := 0;
        v_lapsed := 0;
        v_error := null;
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
                                    (
                                        (m.last_paid_at at time zone p.timezone)
                                        + private.membership_billing_period(
                                            m.billing_period, m.billing_interval, p.default_billing_interval
                                        )
                                    )::date
                                ) + p.past_due_grace_days + 1
                            )::timestamp at time zone p.timezone
                        ) as overdue_at
                    from app.memberships as m
                    inner join app.practices as p on p.id = m.practice_id
                    where m.practice_id = v_practice.id
                        and m.status = 'active'
                        and (m.next_billing_on is not null or m.last_paid_at is not null)
                )
                update app.memberships as m
                set overdue_at = d.overdue_at, overdue_basis_at = d.payment_evidence_at
                from due as d
                where m.id = d.id
                    and d.overdue_at <= p_as_of
                    and (m.overdue_at is null or m.overdue_basis_at is distinct from m.payment_evidence_at)
                returning m.id
            loop
                if private.settle_membership_status(v_id) = 'past_due' then
                    v_past_due := v_past_due + 1;
                end if;
            end loop;

            for v_id in
                with due as (
                    select
                        m.id,
                        m.payment_evidence_at,
                        (
                            ((m.status_changed_at at time zone p.timezone)::date + p.lapse_days + 1)::timestamp
                            at time zone p.timezone
                        ) as lapse_at
                    from app.memberships as m
                    inner join app.practices as p on p.id = m.practice_id
                    where m.practice_id = v_practice.id
                        and m.status = 'past_due'
                        and private.contract_membership_status(m.contract_status) is distinct from 'active'
                )
                update app.memberships as m
                set lapsed_at = d.lapse_at, lapsed_basis_at = d.payment_evidence_at
                from due as d
                where m.id = d.id
                    and d.lapse_at <= p_as_of
                    and (m.lapsed_at is null or m.lapsed_basis_at is distinct from m.payment_evidence_at)
                returning m.id
            loop
                if private.settle_membership_status(v_id) = 'canceled' then
                    v_lapsed := v_lapsed + 1;
                end if;
            end loop;
        exception when others then
            v_past_due := 0;
            v_lapsed := 0;
            v_error := sqlstate || ': ' || sqlerrm;
        end;
        practice_id := v_practice.id;
        practice_slug := v_practice.slug;
        marked_past_due := v_past_due;
        lapsed := v_lapsed;
        error := v_error;
        return next;
    end loop;
end
$$;
comment on function private.sweep_memberships(timestamptz) is
'Scheduler: per practice (each in its own subtransaction), active memberships overdue past the '
'grace days become past_due and past-due ones older than lapse_days lapse to canceled (source '
'system); one row per practice with the counts, or the error that rolled that practice back.';
grant execute on function private.sweep_memberships(timestamptz) to mx_worker;

-- Same signature and result as before (how many became past_due), now through the per-practice
-- sweep: the practices that failed are raised as a WARNING, the others are done.
create or replace function private.mark_overdue_memberships(as_of timestamptz default now())
returns integer
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row record;
    v_changed integer := 0;
begin
    for v_row in select * from private.sweep_memberships(as_of) loop
        v_changed := v_changed + v_row.marked_past_due;
        if v_row.error is not null then
            raise warning 'membership sweep failed for practice % (%): %',
                v_row.practice_slug, v_row.practice_id, v_row.error;
        end if;
    end loop;
    return v_changed;
end
$$;
comment on function private.mark_overdue_memberships(timestamptz) is
'Scheduler (pg_cron): run private.sweep_memberships (overdue and lapse, per practice); returns how '
'many became past_due; a practice that failed is reported as a WARNING and does not stop the others.';
