-- Moving a product to another programme: every invoice line of the product follows, the
-- memberships of every patient who bought it are rebuilt from stored payments, and the
-- move is logged. One transaction (one function call).
--
-- A membership left with no payment in its programme after a move:
--   * its workflow fields (google review, referral source, fulfilment, notes) are carried
--     over to the patient's membership in the new programme where that one has none;
--   * it is deleted when it has no contract and no staff decision (it was built from
--     payments only, so nothing is lost: its history moves with the change log);
--   * else it is kept, its payment evidence cleared and its status settled again from
--     the contract or staff evidence left; if none decides, it becomes canceled with
--     source 'system' (reason recorded), so it never lingers as active.

create table app.product_category_changes (
    id bigint generated always as identity primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    product_id uuid not null references app.products (id) on delete cascade,
    from_category_id uuid,
    to_category_id uuid not null,
    changed_by uuid references auth.users (id) on delete set null,
    changed_at timestamptz not null default now(),
    lines_moved integer not null default 0,
    memberships_rebuilt integer not null default 0,
    memberships_removed integer not null default 0,
    memberships_kept integer not null default 0
);
create index product_category_changes_practice_idx on app.product_category_changes (practice_id, changed_at desc);
create index product_category_changes_product_idx on app.product_category_changes (product_id, changed_at desc);
comment on table app.product_category_changes is
'Change log of product programmes: who moved which product from where to where, and what followed.';

alter table app.product_category_changes enable row level security;
grant select on app.product_category_changes to authenticated;

create policy product_category_changes_select on app.product_category_changes
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

-- 'system' is a new status source: the overdue sweep and recategorisation clean-up.
alter table app.memberships drop constraint memberships_status_source_check;
alter table app.memberships add constraint memberships_status_source_check
check (status_source in ('payment', 'contract', 'staff', 'system'));
alter table app.membership_events drop constraint membership_events_source_check;
alter table app.membership_events add constraint membership_events_source_check
check (source in ('payment', 'contract', 'staff', 'system'));

-- ---------------------------------------------------------------------------
-- The move itself. Inserting a row into the change log is the request: owners and admins
-- may insert (practice_id, product_id, to_category_id); a BEFORE INSERT trigger (definer:
-- it writes products, lines and memberships no client may write) checks the product and
-- programme belong to that practice, performs the move and completes the row.
-- (A client cannot update app.products itself: its generated name_key calls a private
-- function on every update.)
-- ---------------------------------------------------------------------------
grant insert (practice_id, product_id, to_category_id) on app.product_category_changes to authenticated;

create policy product_category_changes_insert on app.product_category_changes
for insert to authenticated
with check (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

create trigger products_touch_updated_at
before update on app.products
for each row execute function private.touch_updated_at();

create function private.apply_product_category_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_actor uuid := (select auth.uid());
    v_product_id uuid := new.product_id;
    v_practice_id uuid := new.practice_id;
    v_from uuid;
    v_to uuid := new.to_category_id;
    v_lines integer := 0;
    v_rebuilt integer := 0;
    v_removed integer := 0;
    v_kept integer := 0;
    v_patient record;
    v_old app.memberships;
    v_new_id uuid;
    v_status text;
begin
    select p.category_id into v_from from app.products as p
    where p.id = v_product_id and p.practice_id = v_practice_id
    for update;
    if not found then
        raise exception 'product % is not one of this practice''s', v_product_id using errcode = '22023';
    end if;
    if not exists (select from app.categories as c where c.id = v_to and c.practice_id = v_practice_id) then
        raise exception 'programme % is not one of this practice''s', v_to using errcode = '22023';
    end if;
    new.from_category_id := v_from;
    new.changed_by := v_actor;
    new.changed_at := now();
    update app.products set category_id = v_to, category_confirmed = true where id = v_product_id;
    if v_from = v_to then
        return new;  -- a confirmation: nothing moves
    end if;

    update app.invoice_lines set category_id = v_to
    where product_id = v_product_id and category_id is distinct from v_to;
    get diagnostics v_lines = row_count;

    for v_patient in
        select distinct p.patient_id
        from app.invoice_lines as l
        inner join app.payment_invoices as pi on pi.invoice_id = l.invoice_id
        inner join app.payments as p on p.id = pi.payment_id
        where l.product_id = v_product_id and p.patient_id is not null
        order by p.patient_id
    loop
        -- same lock as the worker takes per patient
        perform pg_advisory_xact_lock(hashtextextended(v_patient.patient_id::text, 1));
        v_new_id := private.refresh_membership_from_payments(
            v_practice_id, v_patient.patient_id, v_to
        );
        v_rebuilt := v_rebuilt + 1;
        if private.refresh_membership_from_payments(
            v_practice_id, v_patient.patient_id, v_from
        ) is not null then
            v_rebuilt := v_rebuilt + 1;
            continue;
        end if;
        -- nothing left in the old programme
        select * into v_old from app.memberships
        where practice_id = v_practice_id and patient_id = v_patient.patient_id
            and category_id = v_from
        for update;
        if not found then
            continue;
        end if;
        if v_new_id is not null then
            update app.memberships as n
            set google_review_submitted = n.google_review_submitted or v_old.google_review_submitted,
                google_review_at = coalesce(n.google_review_at, v_old.google_review_at),
                referral_source = coalesce(n.referral_source, v_old.referral_source),
                fulfillment = coalesce(n.fulfillment, v_old.fulfillment),
                notes = case
                    when v_old.notes is null then n.notes
                    when n.notes is null then v_old.notes
                    else n.notes || e'\n' || v_old.notes
                end
            where n.id = v_new_id;
        end if;
        if v_old.contract_id is null and v_old.staff_status is null then
            delete from app.memberships where id = v_old.id;
            v_removed := v_removed + 1;
        else
            update app.memberships
            set payment_status = null, payment_evidence_at = null, last_paid_at = null
            where id = v_old.id;
            select r.status into v_status
            from app.memberships as m
            cross join lateral private.resolve_membership_status(m) as r
            where m.id = v_old.id;
            if v_status is null then
                update app.memberships
                set status = 'canceled', status_source = 'system', status_changed_at = now(), canceled_at = now()
                where id = v_old.id and status <> 'canceled';
                if found then
                    insert into app.membership_events (
                        practice_id, membership_id, old_status, new_status, source, reason, actor_user_id,
                        evidence_at
                    )
                    values (
                        v_old.practice_id, v_old.id, v_old.status, 'canceled', 'system',
                        'no payments left in programme after product recategorisation', v_actor, now()
                    );
                end if;
            else
                perform private.settle_membership_status(v_old.id, v_actor);
            end if;
            v_kept := v_kept + 1;
        end if;
    end loop;

    new.lines_moved := v_lines;
    new.memberships_rebuilt := v_rebuilt;
    new.memberships_removed := v_removed;
    new.memberships_kept := v_kept;
    return new;
end
$$;
comment on function private.apply_product_category_change() is
'Trigger on the change log: move the product, its lines, rebuild memberships from payments, complete the row.';

create trigger product_category_changes_apply
before insert on app.product_category_changes
for each row execute function private.apply_product_category_change();

create function api.set_product_category(p_product_id uuid, p_category_id uuid)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_practice_id uuid;
    v_result jsonb;
begin
    select p.practice_id into v_practice_id from app.products as p where p.id = p_product_id;
    if v_practice_id is null then
        raise exception 'product % not found', p_product_id using errcode = 'P0002';
    end if;
    insert into app.product_category_changes (practice_id, product_id, to_category_id)
    values (v_practice_id, p_product_id, p_category_id)
    returning jsonb_build_object(
        'changed', from_category_id is distinct from to_category_id, 'lines_moved', lines_moved,
        'memberships_rebuilt', memberships_rebuilt, 'memberships_removed', memberships_removed,
        'memberships_kept', memberships_kept
    ) into v_result;
    return v_result;
end
$$;
comment on function api.set_product_category(uuid, uuid) is
'Owners/admins: set (and confirm) a product''s programme; its invoice lines and memberships follow.';
grant execute on function api.set_product_category(uuid, uuid) to authenticated;

create function api.confirm_product_suggestion(p_product_id uuid)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_suggested uuid;
begin
    select p.suggested_category_id into v_suggested from app.products as p where p.id = p_product_id;
    if v_suggested is null then
        raise exception 'product % has no suggestion to confirm', p_product_id using errcode = '22023';
    end if;
    return api.set_product_category(p_product_id, v_suggested);
end
$$;
comment on function api.confirm_product_suggestion(uuid) is
'Owners/admins: accept the suggested programme of a product (same effects as set_product_category).';
grant execute on function api.confirm_product_suggestion(uuid) to authenticated;

-- Owners and admins only: staff see no row (the filter uses the admin helper).
create view api.products_admin with (security_invoker = true) as
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
where p.practice_id = any((select private.current_admin_practice_ids())::uuid[]);
comment on view api.products_admin is
'Owners/admins: products with their programme, suggestion, confirmation and membership counts.';
grant select on api.products_admin to authenticated;

create view api.product_category_changes with (security_invoker = true) as
select
    x.id,
    x.practice_id,
    x.product_id,
    x.from_category_id,
    x.to_category_id,
    x.changed_by,
    x.changed_at,
    x.lines_moved,
    x.memberships_rebuilt,
    x.memberships_removed,
    x.memberships_kept
from app.product_category_changes as x;
comment on view api.product_category_changes is 'Change log of product programmes.';
grant select on api.product_category_changes to authenticated;
