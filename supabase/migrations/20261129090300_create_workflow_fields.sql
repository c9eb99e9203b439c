-- The practice's workflow: per membership google review, referral source (a practice-defined
-- list), fulfilment and notes; per invoice the pharmacy follow-up. Any member edits them
-- through invoker API functions: column-level UPDATE grants on exactly those columns plus
-- one update policy per table. Every edit is audited by a trigger (old and new values).

-- ---------------------------------------------------------------------------
-- Referral sources
-- ---------------------------------------------------------------------------
create table app.referral_sources (
    practice_id uuid not null references app.practices (id) on delete cascade,
    code text not null check (code ~ '^[a-z0-9][a-z0-9_]*$'),
    label text not null check (length(trim(label)) > 0),
    sort_order integer not null default 100,
    created_at timestamptz not null default now(),
    primary key (practice_id, code)
);
comment on table app.referral_sources is 'A practice''s list of referral sources (online, refer_a_friend, ...).';

create function private.seed_practice_referral_sources()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into app.referral_sources (practice_id, code, label, sort_order)
    values
        (new.id, 'online', 'Online', 10),
        (new.id, 'refer_a_friend', 'Refer a friend', 20),
        (new.id, 'other', 'Other', 90)
    on conflict do nothing;
    return new;
end
$$;
comment on function private.seed_practice_referral_sources() is
'Trigger: give a new practice the default referral sources.';

create trigger practices_seed_referral_sources
after insert on app.practices
for each row execute function private.seed_practice_referral_sources();

insert into app.referral_sources (practice_id, code, label, sort_order)
select
    p.id,
    s.code,
    s.label,
    s.sort_order
from app.practices as p
cross join (
    values ('online', 'Online', 10), ('refer_a_friend', 'Refer a friend', 20), ('other', 'Other', 90)
) as s (code, label, sort_order)
on conflict do nothing;

-- legacy values outside the list become 'other' before the list is enforced
update app.memberships as m set referral_source = 'other'
where m.referral_source is not null
    and not exists (
        select from app.referral_sources as r
        where r.practice_id = m.practice_id and r.code = m.referral_source
    );

alter table app.memberships
add constraint memberships_referral_source_fkey
foreign key (practice_id, referral_source) references app.referral_sources (practice_id, code)
on update cascade;
create index memberships_practice_referral_idx on app.memberships (practice_id, referral_source)
where referral_source is not null;

alter table app.referral_sources enable row level security;
grant select on app.referral_sources to authenticated;
grant insert (practice_id, code, label, sort_order), update (label, sort_order), delete
on app.referral_sources to authenticated;

create policy referral_sources_select on app.referral_sources
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy referral_sources_insert on app.referral_sources
for insert to authenticated
with check (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

create policy referral_sources_update on app.referral_sources
for update to authenticated
using (practice_id = any((select private.current_admin_practice_ids())::uuid[]))
with check (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

create policy referral_sources_delete on app.referral_sources
for delete to authenticated
using (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

-- ---------------------------------------------------------------------------
-- Audit of workflow edits
-- ---------------------------------------------------------------------------
create table app.workflow_audit (
    id bigint generated always as identity primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    table_name text not null check (table_name in ('memberships', 'invoices')),
    row_id text not null,
    changed_by uuid references auth.users (id) on delete set null,
    changed_at timestamptz not null default now(),
    old_values jsonb not null,
    new_values jsonb not null
);
create index workflow_audit_practice_changed_idx on app.workflow_audit (practice_id, changed_at desc);
create index workflow_audit_row_idx on app.workflow_audit (table_name, row_id, changed_at desc);
comment on table app.workflow_audit is
'Every edit of a workflow field: who, when, which row, the old and new values of the changed fields.';

alter table app.workflow_audit enable row level security;
grant select on app.workflow_audit to authenticated;

create policy workflow_audit_select on app.workflow_audit
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

-- Trigger: TG_ARGV lists the audited columns. Definer: clients cannot insert audit rows.
create function private.audit_workflow_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_old jsonb := '{}';
    v_new jsonb := '{}';
    v_col text;
    v_before jsonb := to_jsonb(old);
    v_after jsonb := to_jsonb(new);
begin
    foreach v_col in array tg_argv loop
        if v_before -> v_col is distinct from v_after -> v_col then
            v_old := v_old || jsonb_build_object(v_col, v_before -> v_col);
            v_new := v_new || jsonb_build_object(v_col, v_after -> v_col);
        end if;
    end loop;
    if v_new <> '{}' then
        insert into app.workflow_audit (practice_id, table_name, row_id, changed_by, old_values, new_values)
        values (new.practice_id, tg_table_name, v_after ->> 'id', (select auth.uid()), v_old, v_new);
    end if;
    return null;
end
$$;
comment on function private.audit_workflow_change() is
'Trigger: record the changed workflow fields (named in the trigger arguments) in app.workflow_audit.';

create trigger memberships_audit_workflow
after update of google_review_submitted, google_review_at, referral_source, fulfillment, notes
on app.memberships
for each row execute function private.audit_workflow_change(
    'google_review_submitted', 'google_review_at', 'referral_source', 'fulfillment', 'notes'
);

create trigger invoices_audit_followup
after update of data_sent_status, data_sent_at, data_sent_notes, ordered_by_provider_at
on app.invoices
for each row execute function private.audit_workflow_change(
    'data_sent_status', 'data_sent_at', 'data_sent_notes', 'ordered_by_provider_at'
);

-- ---------------------------------------------------------------------------
-- Who may write: any member, exactly these columns
-- ---------------------------------------------------------------------------
grant update (google_review_submitted, google_review_at, referral_source, fulfillment, notes)
on app.memberships to authenticated;

-- (the update policy memberships_update is in 20261129090200, for staff decisions too)

grant update (data_sent_status, data_sent_at, data_sent_notes, ordered_by_provider_at)
on app.invoices to authenticated;

create policy invoices_update on app.invoices
for update to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]))
with check (practice_id = any((select private.current_practice_ids())::uuid[]));

-- ---------------------------------------------------------------------------
-- API
-- ---------------------------------------------------------------------------
-- p_changes: the keys present are set (a JSON null clears). Keys: google_review_submitted,
-- google_review_at (defaults to now when the review is marked submitted), referral_source,
-- fulfillment, notes.
create function api.update_membership_workflow(p_membership_id uuid, p_changes jsonb)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_unknown text;
    v_result jsonb;
    v_review boolean := (p_changes ->> 'google_review_submitted')::boolean;
begin
    select string_agg(k, ', ') into v_unknown
    from jsonb_object_keys(coalesce(p_changes, '{}')) as k
    where k not in ('google_review_submitted', 'google_review_at', 'referral_source', 'fulfillment', 'notes');
    if v_unknown is not null then
        raise exception 'unknown workflow fields: %', v_unknown using errcode = '22023';
    end if;
    if p_changes ? 'google_review_submitted' and v_review is null then
        raise exception 'google_review_submitted cannot be null' using errcode = '22023';
    end if;

    update app.memberships as m
    set google_review_submitted = case
            when p_changes ? 'google_review_submitted' then v_review else m.google_review_submitted
        end,
        google_review_at = case
            when p_changes ? 'google_review_at' then (p_changes ->> 'google_review_at')::timestamptz
            when v_review is false then null
            when v_review and not m.google_review_submitted then now()
            else m.google_review_at
        end,
        referral_source = case
            when p_changes ? 'referral_source' then p_changes ->> 'referral_source' else m.referral_source
        end,
        fulfillment = case when p_changes ? 'fulfillment' then p_changes ->> 'fulfillment' else m.fulfillment end,
        notes = case when p_changes ? 'notes' then p_changes ->> 'notes' else m.notes end
    where m.id = p_membership_id
    returning jsonb_build_object(
        'id', m.id, 'google_review_submitted', m.google_review_submitted,
        'google_review_at', m.google_review_at, 'referral_source', m.referral_source,
        'fulfillment', m.fulfillment, 'notes', m.notes
    ) into v_result;
    if v_result is null then
        raise exception 'membership % not found', p_membership_id using errcode = 'P0002';
    end if;
    return v_result;
end
$$;
comment on function api.update_membership_workflow(uuid, jsonb) is
'Staff: set workflow fields of a membership (keys present in p_changes are set); audited.';
grant execute on function api.update_membership_workflow(uuid, jsonb) to authenticated;

-- p_changes keys: data_sent_status (pending | yes | no), data_sent_at (defaults to now when the
-- status becomes yes or no), data_sent_notes, ordered_by_provider_at.
create function api.update_invoice_followup(p_invoice_id bigint, p_changes jsonb)
returns jsonb
language plpgsql
security invoker
set search_path = ''
as $$
declare
    v_unknown text;
    v_result jsonb;
    v_status text := p_changes ->> 'data_sent_status';
begin
    select string_agg(k, ', ') into v_unknown
    from jsonb_object_keys(coalesce(p_changes, '{}')) as k
    where k not in ('data_sent_status', 'data_sent_at', 'data_sent_notes', 'ordered_by_provider_at');
    if v_unknown is not null then
        raise exception 'unknown follow-up fields: %', v_unknown using errcode = '22023';
    end if;

    update app.invoices as i
    set data_sent_status = case when p_changes ? 'data_sent_status' then v_status else i.data_sent_status end,
        data_sent_at = case
            when p_changes ? 'data_sent_at' then (p_changes ->> 'data_sent_at')::timestamptz
            when v_status = 'pending' then null
            when v_status in ('yes', 'no') and v_status is distinct from i.data_sent_status then now()
            else i.data_sent_at
        end,
        data_sent_notes = case
            when p_changes ? 'data_sent_notes' then p_changes ->> 'data_sent_notes' else i.data_sent_notes
        end,
        ordered_by_provider_at = case
            when p_changes ? 'ordered_by_provider_at' then (p_changes ->> 'ordered_by_provider_at')::timestamptz
            else i.ordered_by_provider_at
        end
    where i.id = p_invoice_id
    returning jsonb_build_object(
        'id', i.id, 'data_sent_status', i.data_sent_status, 'data_sent_at', i.data_sent_at,
        'data_sent_notes', i.data_sent_notes, 'ordered_by_provider_at', i.ordered_by_provider_at
    ) into v_result;
    if v_result is null then
        raise exception 'invoice % not found', p_invoice_id using errcode = 'P0002';
    end if;
    return v_result;
end
$$;
comment on function api.update_invoice_followup(bigint, jsonb) is
'Staff: set the pharmacy follow-up of an invoice (keys present in p_changes are set); audited.';
grant execute on function api.update_invoice_followup(bigint, jsonb) to authenticated;

create function api.set_referral_source(
    p_practice_id uuid, p_code text, p_label text, p_sort_order integer default 100
)
returns void
language sql
security invoker
set search_path = ''
as $$
    insert into app.referral_sources (practice_id, code, label, sort_order)
    values (p_practice_id, lower(trim(p_code)), trim(p_label), coalesce(p_sort_order, 100))
    on conflict (practice_id, code) do update
    set label = excluded.label, sort_order = excluded.sort_order
$$;
comment on function api.set_referral_source(uuid, text, text, integer) is
'Owners/admins: add a referral source or relabel one.';
grant execute on function api.set_referral_source(uuid, text, text, integer) to authenticated;

create function api.delete_referral_source(p_practice_id uuid, p_code text)
returns boolean
language sql
security invoker
set search_path = ''
as $$
    with d as (
        delete from app.referral_sources where practice_id = p_practice_id and code = p_code returning 1
    )
    select exists (select from d)
$$;
comment on function api.delete_referral_source(uuid, text) is
'Owners/admins: remove a referral source no membership uses (a used one is refused).';
grant execute on function api.delete_referral_source(uuid, text) to authenticated;

create view api.referral_sources with (security_invoker = true) as
select
    r.practice_id,
    r.code,
    r.label,
    r.sort_order
from app.referral_sources as r;
comment on view api.referral_sources is 'Referral sources of the requesting user''s practices.';
grant select on api.referral_sources to authenticated;

create view api.workflow_audit with (security_invoker = true) as
select
    a.id,
    a.practice_id,
    a.table_name,
    a.row_id,
    a.changed_by,
    a.changed_at,
    a.old_values,
    a.new_values
from app.workflow_audit as a;
comment on view api.workflow_audit is 'Audit of workflow and follow-up edits.';
grant select on api.workflow_audit to authenticated;
