-- Issue 12, item 2: `member add` gave the role to whoever had registered the e-mail first
-- (open sign-up without confirmation let anyone pre-register a future owner's address). A
-- role now goes only to an account whose address is confirmed, or that was created by an
-- invitation (the invitation goes to the address; only its owner can accept it). Sign-up is
-- off in supabase/config.toml; the README says so for the hosted project.

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
    if p_role not in ('owner', 'admin', 'staff') then
        raise exception 'role must be owner, admin or staff, not "%"', p_role using errcode = '22023';
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
'Operator: give a user a role (owner, admin, staff) in a practice, only when the account''s e-mail is '
'confirmed or it was invited; returns added, unchanged or role changed.';
