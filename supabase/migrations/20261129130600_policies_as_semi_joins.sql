-- Policies as semi-joins, and a dead-letter replay that ends.
--
-- 1. Every policy (and the two admin views that filter the same way) now reads
--    `practice_id in (select unnest(private.current_practice_ids()))` instead of
--    `practice_id = any((select private.current_practice_ids())::uuid[])`: an uncorrelated
--    subquery, run once per statement, that the planner treats as a semi-join with a fair row
--    estimate. The `= any(...)` form estimated 1% of a practice's rows and turned a 3 ms
--    keyset page into a 350 ms full read at 1M memberships (docs/benchmarks.md, "Findings").
--    Policies created after this change's first migrations already use the new form.
-- 2. private.replay_events removed the replayed events' dead letters by reading the DLQ and
--    making every other message visible again inside the read loop, so the loop was handed
--    the same messages back forever once more than one batch was dead (pgTAP 102). It now
--    makes them visible again only after the whole scan.

alter policy practices_select on app.practices
using (id in (select unnest(private.current_practice_ids())));

alter policy practices_update on app.practices
using (id in (select unnest(private.current_admin_practice_ids())))
with check (id in (select unnest(private.current_admin_practice_ids())));

alter policy practice_members_select on app.practice_members
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy categories_select on app.categories
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy categories_insert on app.categories
with check (practice_id in (select unnest(private.current_admin_practice_ids())) and kind = 'programme');

alter policy categories_update on app.categories
using (practice_id in (select unnest(private.current_admin_practice_ids())) and kind = 'programme')
with check (practice_id in (select unnest(private.current_admin_practice_ids())) and kind = 'programme');

alter policy merchant_accounts_select on app.merchant_accounts
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy patients_select on app.patients
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy products_select on app.products
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy payments_select on app.payments
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy invoices_select on app.invoices
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy invoice_lines_select on app.invoice_lines
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy payment_invoices_select on app.payment_invoices
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy contracts_select on app.contracts
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy memberships_select on app.memberships
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy membership_events_select on app.membership_events
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy category_rules_select on app.category_rules
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy category_rules_insert on app.category_rules
with check (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy category_rules_update on app.category_rules
using (practice_id in (select unnest(private.current_admin_practice_ids())))
with check (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy category_rules_delete on app.category_rules
using (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy product_category_changes_select on app.product_category_changes
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy product_category_changes_insert on app.product_category_changes
with check (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy memberships_update on app.memberships
using (practice_id in (select unnest(private.current_practice_ids())))
with check (practice_id in (select unnest(private.current_practice_ids())));

alter policy referral_sources_select on app.referral_sources
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy referral_sources_insert on app.referral_sources
with check (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy referral_sources_update on app.referral_sources
using (practice_id in (select unnest(private.current_admin_practice_ids())))
with check (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy referral_sources_delete on app.referral_sources
using (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy workflow_audit_select on app.workflow_audit
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy invoices_update on app.invoices
using (practice_id in (select unnest(private.current_practice_ids())))
with check (practice_id in (select unnest(private.current_practice_ids())));

alter policy webhook_events_select_admin on app.webhook_events
using (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy event_replays_select_admin on app.event_replays
using (practice_id in (select unnest(private.current_admin_practice_ids())));

alter policy sync_runs_select on app.sync_runs
using (practice_id in (select unnest(private.current_practice_ids())));

alter policy contract_payments_select on app.contract_payments
using (practice_id in (select unnest(private.current_practice_ids())));

create or replace view api.products_admin with (security_invoker = true) as
select
    p.id,
    p.practice_id,
    p.name,
    p.category_id,
    c.name as category_name,
    c.kind = 'uncategorized' as is_uncategorized,
    p.suggested_category_id,
    s.name as suggested_category_name,
    p.category_confirmed,
    p.first_seen_at,
    coalesce(u.patients, 0) as patient_count,
    coalesce(u.memberships, 0) as membership_count,
    coalesce(u.active_memberships, 0) as active_membership_count
from app.products as p
inner join app.categories as c on p.category_id = c.id
left join app.categories as s on p.suggested_category_id = s.id
left join lateral (
    select
        count(distinct pay.patient_id) as patients,
        count(distinct m.id) as memberships,
        count(distinct m.id) filter (where m.status in ('active', 'past_due')) as active_memberships
    from app.invoice_lines as l
    inner join app.payment_invoices as pi on l.invoice_id = pi.invoice_id
    inner join app.payments as pay on pi.payment_id = pay.id
    left join app.memberships as m
        on pay.patient_id = m.patient_id and p.category_id = m.category_id
    where l.product_id = p.id
) as u on true
where p.practice_id in (select unnest(private.current_admin_practice_ids()));

create or replace view api.sync_runs with (security_invoker = true) as
select
    r.id,
    r.practice_id,
    r.merchant_account_id,
    m.mx_merchant_id,
    r.kind,
    r.status,
    r.run_by,
    r.started_at,
    r.finished_at,
    r.since,
    r.watermark,
    r.pages,
    r.found,
    r.queued,
    r.error
from app.sync_runs as r
inner join app.merchant_accounts as m on r.merchant_account_id = m.id
where r.practice_id in (select unnest(private.current_admin_practice_ids()));

create or replace function private.replay_events(
    p_event_ids bigint[],
    p_replayed_by text,
    p_actor_user_id uuid default null,
    p_statuses text[] default array['dead']
)
returns table (event_id bigint, outcome text, previous_status text, msg_id bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_event app.webhook_events;
    v_msg_id bigint;
    v_replayed bigint [] := '{}';
    v_dlq record;
    v_removed jsonb := '{}';
    v_batch integer;
    v_kept bigint [] := '{}';
begin
    for v_event in
        select e.* from app.webhook_events as e
        where e.id = any(p_event_ids)
        order by e.id
        for update
    loop
        if v_event.status <> all(p_statuses) or v_event.payment_id is null then
            event_id := v_event.id;
            outcome := 'not_replayable';
            previous_status := v_event.status;
            msg_id := null;
            return next;
            continue;
        end if;
        v_msg_id := private.queue_send('mx_ingest', pg_catalog.jsonb_build_object('event_id', v_event.id));
        update app.webhook_events as e
        set status = 'queued', attempts = 0, last_error = null, processed_at = null, msg_id = v_msg_id
        where e.id = v_event.id;
        insert into app.event_replays (
            event_id, practice_id, replayed_by, actor_user_id, previous_status, previous_attempts,
            previous_error, msg_id
        )
        values (
            v_event.id, v_event.practice_id, p_replayed_by, p_actor_user_id, v_event.status,
            v_event.attempts, v_event.last_error, v_msg_id
        );
        v_replayed := v_replayed || v_event.id;
        event_id := v_event.id;
        outcome := 'replayed';
        previous_status := v_event.status;
        msg_id := v_msg_id;
        return next;
    end loop;

    -- ids that matched no event
    return query
    select r.id, 'not_found'::text, null::text, null::bigint
    from unnest(p_event_ids) as r (id)
    where not exists (select from app.webhook_events as e where e.id = r.id);

    if cardinality(v_replayed) = 0 then
        return;
    end if;

    -- Remove the replayed events' dead letters: read every visible DLQ message (each read hides
    -- it), delete the matching ones, and only after the whole scan make the others visible
    -- again; releasing them inside the loop would hand the same messages back forever.
    loop
        v_batch := 0;
        for v_dlq in select q.msg_id, q.message from private.queue_read('mx_ingest_dlq', 300, 500) as q loop
            v_batch := v_batch + 1;
            if (v_dlq.message ->> 'event_id')::bigint = any(v_replayed) then
                perform private.queue_delete('mx_ingest_dlq', v_dlq.msg_id);
                v_removed := pg_catalog.jsonb_set(
                    v_removed, array[v_dlq.message ->> 'event_id'],
                    pg_catalog.to_jsonb(coalesce((v_removed ->> (v_dlq.message ->> 'event_id'))::integer, 0) + 1)
                );
            else
                v_kept := v_kept || v_dlq.msg_id;
            end if;
        end loop;
        exit when v_batch < 500;
    end loop;
    perform private.queue_set_visibility('mx_ingest_dlq', k, 0) from unnest(v_kept) as k;

    update app.event_replays as r
    set dlq_messages_removed = (v_removed ->> r.event_id::text)::integer
    where r.event_id = any(v_replayed)
        and r.replayed_at = now()
        and v_removed ? r.event_id::text;
end
$$;
