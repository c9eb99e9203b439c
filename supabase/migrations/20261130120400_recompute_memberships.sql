-- Recompute every patient x programme under the recurring rules (issue 14), and report.
--
-- private.recompute_memberships(practice) rebuilds each membership of a practice (all when
-- null) from its stored payments (private.refresh_membership_from_payments; rows without
-- payments are settled from their other evidence) and returns what changed. The migration
-- runs it once for every practice; an operator runs it again after changing a practice's
-- count_repeat_purchases or default_billing_interval (docs/memberships.md), which otherwise
-- take effect per patient x programme at its next payment.
--
-- A membership that becomes a one-time purchase had a history made of one-off sales and the
-- overdue sweep's guesses (active, then past_due for ever). Those payment and system events
-- are replaced by one event (null -> one_time, reason 'recomputed: no recurring evidence', at
-- its first purchase), so the metrics of past periods no longer count it as a member; staff
-- and contract events are kept (counted in the report as with_staff_history).

create function private.recompute_memberships(p_practice_id uuid default null)
returns jsonb
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
        -- the worker's per-patient lock: no payment of this patient applies meanwhile
        perform pg_advisory_xact_lock(hashtextextended(v_row.patient_id::text, 1));
        if private.refresh_membership_from_payments(v_row.practice_id, v_row.patient_id, v_row.category_id)
            is null then
            perform private.settle_membership_status(v_row.id);
        end if;
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
comment on function private.recompute_memberships(uuid) is
'Operator: rebuild every membership of a practice (all when null) under the recurring rules; '
'returns counts (memberships, became_one_time, became_member, members, one_time, with_staff_history).';

do $recompute$
declare
    v_report jsonb;
begin
    v_report := private.recompute_memberships(null);
    raise notice 'memberships recomputed under the recurring rules: %', v_report;
end
$recompute$;
