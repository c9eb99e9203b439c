-- Operator procedures for a practice's staff. The user itself comes from Supabase Auth (an
-- invitation through its admin API) or, locally, from the platform layer; these procedures
-- only give an existing user a role in a practice, list and remove them.

create function private.set_practice_member(p_practice_slug text, p_user_id uuid, p_role text)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_practice_id uuid := private.practice_id_by_slug(p_practice_slug);
    v_previous text;
begin
    if p_role not in ('owner', 'admin', 'staff') then
        raise exception 'role must be owner, admin or staff, not "%"', p_role using errcode = '22023';
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
'Operator: give a user a role (owner, admin, staff) in a practice; returns added, unchanged or role changed.';

create function private.remove_practice_member(p_practice_slug text, p_email text)
returns boolean
language sql
security definer
set search_path = ''
as $$
    with removed as (
        delete from app.practice_members as m
        using auth.users as u
        where m.user_id = u.id
            and m.practice_id = private.practice_id_by_slug(p_practice_slug)
            and lower(u.email) = lower(p_email)
        returning 1
    )
    select exists (select from removed)
$$;
comment on function private.remove_practice_member(text, text) is
'Operator: take a user (by e-mail) out of a practice; the account itself stays.';

create function private.practice_members_of(p_practice_slug text)
returns table (email text, role text, user_id uuid, added_at timestamptz)
language sql
stable
security definer
set search_path = ''
as $$
    select u.email::text, m.role, m.user_id, m.created_at
    from app.practice_members as m
    inner join auth.users as u on m.user_id = u.id
    where m.practice_id = private.practice_id_by_slug(p_practice_slug)
    order by m.role, u.email
$$;
comment on function private.practice_members_of(text) is 'Operator: the staff of a practice.';
