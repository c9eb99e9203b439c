-- A read-only role: `viewer` may read everything staff can read and change nothing.
--
-- Reads keep using private.current_practice_ids() (every member, viewers included). Every
-- write staff may make today goes through the two update policies below (memberships:
-- workflow fields, status actions, treat as member; invoices: pharmacy follow-up); the
-- owner/admin writes already use private.current_admin_practice_ids(), which a viewer is not
-- in. The update policies keep USING on every member (a viewer's update finds the row) and
-- move WITH CHECK to the editors, so a viewer's change is refused with an error (42501, "new
-- row violates row-level security policy") instead of silently touching nothing.

alter table app.practice_members drop constraint practice_members_role_check;
alter table app.practice_members add constraint practice_members_role_check
check (role in ('owner', 'admin', 'staff', 'viewer'));

create function private.current_editor_practice_ids()
returns uuid[]
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user_id uuid := auth.uid();
    v_practice_ids uuid[];
begin
    select coalesce(pg_catalog.array_agg(m.practice_id), '{}')
    into v_practice_ids
    from app.practice_members as m
    where m.user_id = v_user_id and m.role in ('owner', 'admin', 'staff');
    return v_practice_ids;
end
$$;
comment on function private.current_editor_practice_ids() is
'Practices where the requesting user may edit practice data (owner, admin, staff; not viewer).';
revoke all on function private.current_editor_practice_ids() from public;
grant execute on function private.current_editor_practice_ids() to authenticated;

alter policy memberships_update on app.memberships
using (practice_id in (select unnest(private.current_practice_ids())))
with check (practice_id in (select unnest(private.current_editor_practice_ids())));

alter policy invoices_update on app.invoices
using (practice_id in (select unnest(private.current_practice_ids())))
with check (practice_id in (select unnest(private.current_editor_practice_ids())));

-- redefined from supabase/schema/private.sql: the viewer role is accepted
create or replace function private.set_practice_member(p_practice_slug text, p_user_id uuid, p_role text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practice_id uuid := private.practice_id_by_slug(p_practice_slug);
    v_previous text;
begin
    if p_role is null or p_role not in ('owner', 'admin', 'staff', 'viewer') then
        raise exception 'role must be owner, admin, staff or viewer, not "%"', p_role using errcode = '22023';
    end if;
    if not exists (
        select from auth.users as u
        where u.id = p_user_id
            and (u.email_confirmed_at is not null or u.invited_at is not null)
    ) then
        raise exception 'the account % has neither confirmed its e-mail address nor been invited', p_user_id
        using errcode = '42501',
        hint = 'a role goes only to a confirmed address or through an invitation';
    end if;
    select m.role into v_previous from app.practice_members as m
    where m.practice_id = v_practice_id and m.user_id = p_user_id;
    insert into app.practice_members (practice_id, user_id, role)
    values (v_practice_id, p_user_id, p_role)
    on conflict (practice_id, user_id) do update set role = excluded.role;
    return case when v_previous is null then 'added' when v_previous = p_role then 'unchanged' else 'role changed' end;
end
$$;
comment on function private.set_practice_member(text, uuid, text) is
'Operator: give a user a role (owner, admin, staff, viewer) in a practice, only when the account''s e-mail is confirmed or it was invited; returns added, unchanged or role changed.';
