-- private.recompute_memberships held one transaction-level advisory lock per patient until its
-- commit: on a practice of tens of thousands of patients that overflows the shared lock table
-- ("out of shared memory", found by the started_on migration on bench data). It now takes the
-- worker's per-patient lock and gives it back row by row. Body otherwise unchanged (from
-- 20261130120400_recompute_memberships.sql as today's schema shows it).

create or replace function private.recompute_memberships(p_practice_id uuid default null::uuid) returns jsonb
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row record;
    v_new text;
    v_total integer := 0;
    v_to_one_time integer := 0;
    v_to_member integer := 0;
    v_staff_history integer := 0;
    v_changed uuid[] := '{}';
begin
    -- billing periods of contract memberships (the trigger reads the contract)
    update app.memberships as m set billing_interval = m.billing_interval
    where m.contract_id is not null and (p_practice_id is null or m.practice_id = p_practice_id);

    for v_row in
        select m.id, m.practice_id, m.patient_id, m.category_id, m.status
        from app.memberships as m
        where p_practice_id is null or m.practice_id = p_practice_id
        order by m.patient_id, m.category_id
    loop
        v_total := v_total + 1;
        -- the worker's per-patient lock, taken and given back per row (as the started_on
        -- migration does): held to the end of this one transaction, one per patient of a large
        -- practice overflow the lock table (out of shared memory); the rows' own locks keep the
        -- worker off them until the commit
        perform pg_catalog.pg_advisory_lock(pg_catalog.hashtextextended(v_row.patient_id::text, 1));
        if private.refresh_membership_from_payments(v_row.practice_id, v_row.patient_id, v_row.category_id)
            is null then
            perform private.settle_membership_status(v_row.id);
        end if;
        perform pg_catalog.pg_advisory_unlock(pg_catalog.hashtextextended(v_row.patient_id::text, 1));
        select m.status into v_new from app.memberships as m where m.id = v_row.id;
        if v_new = 'one_time' and v_row.status <> 'one_time' then
            v_to_one_time := v_to_one_time + 1;
            v_changed := v_changed || v_row.id;
        elsif v_new <> 'one_time' and v_row.status = 'one_time' then
            v_to_member := v_to_member + 1;
        end if;
    end loop;

    -- the history of the rows that became one-time purchases
    delete from app.membership_events as e
    where e.membership_id = any(v_changed) and e.source in ('payment', 'system');
    insert into app.membership_events (practice_id, membership_id, old_status, new_status, source, reason, evidence_at)
    select m.practice_id, m.id, null, 'one_time', 'payment', 'recomputed: no recurring evidence',
        coalesce(m.started_on::timestamptz, m.last_paid_at, m.created_at)
    from app.memberships as m
    where m.id = any(v_changed);
    update app.memberships as m
    set status_changed_at = coalesce(m.started_on::timestamptz, m.last_paid_at, m.created_at),
        status_source = 'payment'
    where m.id = any(v_changed);
    select count(distinct e.membership_id) into v_staff_history
    from app.membership_events as e
    where e.membership_id = any(v_changed) and e.source in ('staff', 'contract');

    return jsonb_build_object(
        'memberships', v_total,
        'became_one_time', v_to_one_time,
        'became_member', v_to_member,
        'members', (
            select count(*) from app.memberships as m
            where (p_practice_id is null or m.practice_id = p_practice_id) and m.status <> 'one_time'
        ),
        'one_time', (
            select count(*) from app.memberships as m
            where (p_practice_id is null or m.practice_id = p_practice_id) and m.status = 'one_time'
        ),
        'with_staff_history', v_staff_history
    );
end
$$;
