-- The Team page (owners): list the practice's staff, invite by e-mail with a role, change a
-- role, remove someone, cancel an invitation.
--
-- The dashboard has no service role: an owner's invitation of an address that has no account
-- is recorded here (app.member_invitations, through api as the signed-in owner) and carried
-- out by the worker, which holds the Supabase service credentials: the same code as
-- `python -m worker member add` (worker/ops/invitations.py) invites the address through the
-- Auth admin API, or, where the local platform layer plays Auth, creates the invited
-- auth.users row; then private.complete_member_invitation gives the role. An address that
-- already has an account gets its role at once (under the existing rule: only a confirmed or
-- invited account gets a role). An owner cannot remove or demote the last owner.

create table app.member_invitations (
    id bigint generated always as identity primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    email text not null check (email = lower(email) and email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$'),
    role text not null check (role in ('owner', 'admin', 'staff', 'viewer')),
    invited_by uuid references auth.users (id) on delete set null,
    requested_at timestamptz not null default now(),
    status text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts integer not null default 0,
    user_id uuid references auth.users (id) on delete set null,
    processed_at timestamptz,
    error text
);
comment on table app.member_invitations is
'Invitations owners asked for in the dashboard; the worker sends them (Supabase Auth or the local platform layer) and gives the role.';
-- one open invitation per practice and address; inviting again updates it
create unique index member_invitations_open_idx on app.member_invitations (practice_id, email)
where status in ('pending', 'failed');
create index member_invitations_pending_idx on app.member_invitations (requested_at)
where status = 'pending';
create index member_invitations_invited_by_idx on app.member_invitations (invited_by);
create index member_invitations_user_id_idx on app.member_invitations (user_id);
-- read and written only by the private functions below
alter table app.member_invitations enable row level security;

create function private.require_practice_owner(p_practice_id uuid)
returns void
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not exists (
        select from app.practice_members as m
        where m.practice_id = p_practice_id and m.user_id = auth.uid() and m.role = 'owner'
    ) then
        raise exception 'only an owner of this practice may manage its team' using errcode = '42501';
    end if;
end
$$;
comment on function private.require_practice_owner(uuid) is
'Raises 42501 unless the requesting user is an owner of the practice.';
revoke all on function private.require_practice_owner(uuid) from public;

create function private.check_role(p_role text)
returns void
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
begin
    if p_role is null or p_role not in ('owner', 'admin', 'staff', 'viewer') then
        raise exception 'role must be owner, admin, staff or viewer, not "%"', coalesce(p_role, '')
        using errcode = '22023';
    end if;
end
$$;
comment on function private.check_role(text) is 'Raises 22023 unless the role is owner, admin, staff or viewer.';
revoke all on function private.check_role(text) from public;

create function private.guard_last_owner(p_practice_id uuid, p_user_id uuid, p_new_role text)
returns void
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    -- serialise team changes of one practice: two owners demoting each other at once
    -- must not both see the other one still there
    perform from app.practices as p where p.id = p_practice_id for update;
    if exists (
        select from app.practice_members as m
        where m.practice_id = p_practice_id and m.user_id = p_user_id and m.role = 'owner'
    )
    and p_new_role is distinct from 'owner'
    and (
        select count(*) from app.practice_members as m
        where m.practice_id = p_practice_id and m.role = 'owner'
    ) <= 1 then
        raise exception 'a practice needs an owner: make someone else an owner before removing or demoting the last one'
        using errcode = 'P0001';
    end if;
end
$$;
comment on function private.guard_last_owner(uuid, uuid, text) is
'Raises unless the practice keeps an owner when this user gets p_new_role (null: removed).';
revoke all on function private.guard_last_owner(uuid, uuid, text) from public;

create function private.practice_team(p_practice_id uuid)
returns table (
    user_id uuid, email text, role text, state text, invited_at timestamptz,
    confirmed_at timestamptz, last_sign_in_at timestamptz, added_at timestamptz,
    invitation_id bigint, invitation_error text
)
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform private.require_practice_owner(p_practice_id);
    return query
    select
        m.user_id, u.email::text, m.role,
        case
            when u.email_confirmed_at is not null then 'confirmed'
            when u.invited_at is not null then 'invited'
            else 'unconfirmed'
        end,
        u.invited_at, u.email_confirmed_at, u.last_sign_in_at, m.created_at, null::bigint, null::text
    from app.practice_members as m
    inner join auth.users as u on u.id = m.user_id
    where m.practice_id = p_practice_id
    union all
    select
        null::uuid, i.email, i.role,
        case i.status when 'pending' then 'invitation pending' else 'invitation failed' end,
        i.requested_at, null, null, null, i.id, i.error
    from app.member_invitations as i
    where i.practice_id = p_practice_id and i.status in ('pending', 'failed')
    order by 2;
end
$$;
comment on function private.practice_team(uuid) is
'Owners: the practice''s staff (e-mail, role, confirmed or invited, last sign-in) and its open invitations.';
revoke all on function private.practice_team(uuid) from public;
grant execute on function private.practice_team(uuid) to authenticated;

create function private.invite_practice_member(p_practice_id uuid, p_email text, p_role text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_email text := lower(trim(coalesce(p_email, '')));
    v_user auth.users;
    v_previous text;
begin
    perform private.require_practice_owner(p_practice_id);
    perform private.check_role(p_role);
    if v_email !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$' or length(v_email) > 254 then
        raise exception 'enter an e-mail address such as name@example.com' using errcode = '22023';
    end if;
    select u.* into v_user from auth.users as u where lower(u.email) = v_email limit 1;
    if v_user.id is null then
        -- no account yet: the worker invites the address, then gives the role
        insert into app.member_invitations (practice_id, email, role, invited_by)
        values (p_practice_id, v_email, p_role, auth.uid())
        on conflict (practice_id, email) where status in ('pending', 'failed') do update
        set role = excluded.role, invited_by = excluded.invited_by, status = 'pending',
            requested_at = now(), error = null;
        return 'invitation queued';
    end if;
    if v_user.email_confirmed_at is null and v_user.invited_at is null then
        -- the existing rule (private.set_practice_member): whoever registered the address
        -- without confirming it may not own it
        raise exception 'the account of % has not confirmed its e-mail address and was not invited, so it gets no role', v_email
        using errcode = '42501',
        hint = 'ask the person to confirm the address first';
    end if;
    perform private.guard_last_owner(p_practice_id, v_user.id, p_role);
    select m.role into v_previous from app.practice_members as m
    where m.practice_id = p_practice_id and m.user_id = v_user.id;
    insert into app.practice_members (practice_id, user_id, role)
    values (p_practice_id, v_user.id, p_role)
    on conflict (practice_id, user_id) do update set role = excluded.role;
    return case when v_previous is null then 'added' when v_previous = p_role then 'unchanged' else 'role changed' end;
end
$$;
comment on function private.invite_practice_member(uuid, text, text) is
'Owners: give an address a role: at once when it has a confirmed or invited account, else an invitation the worker sends.';
revoke all on function private.invite_practice_member(uuid, text, text) from public;
grant execute on function private.invite_practice_member(uuid, text, text) to authenticated;

create function private.set_member_role(p_practice_id uuid, p_user_id uuid, p_role text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_previous text;
begin
    perform private.require_practice_owner(p_practice_id);
    perform private.check_role(p_role);
    perform private.guard_last_owner(p_practice_id, p_user_id, p_role);
    update app.practice_members as m set role = p_role
    from app.practice_members as before
    where m.practice_id = p_practice_id and m.user_id = p_user_id
        and before.practice_id = m.practice_id and before.user_id = m.user_id
    returning before.role into v_previous;
    if v_previous is null then
        raise exception 'not a member of this practice' using errcode = 'P0002';
    end if;
    return case when v_previous = p_role then 'unchanged' else 'role changed' end;
end
$$;
comment on function private.set_member_role(uuid, uuid, text) is
'Owners: change a member''s role; the last owner cannot be demoted.';
revoke all on function private.set_member_role(uuid, uuid, text) from public;
grant execute on function private.set_member_role(uuid, uuid, text) to authenticated;

create function private.remove_member(p_practice_id uuid, p_user_id uuid)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform private.require_practice_owner(p_practice_id);
    perform private.guard_last_owner(p_practice_id, p_user_id, null);
    delete from app.practice_members as m where m.practice_id = p_practice_id and m.user_id = p_user_id;
    if not found then
        raise exception 'not a member of this practice' using errcode = 'P0002';
    end if;
    return true;
end
$$;
comment on function private.remove_member(uuid, uuid) is
'Owners: take someone out of the practice (their account stays); the last owner cannot be removed.';
revoke all on function private.remove_member(uuid, uuid) from public;
grant execute on function private.remove_member(uuid, uuid) to authenticated;

create function private.cancel_member_invitation(p_practice_id uuid, p_invitation_id bigint)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    perform private.require_practice_owner(p_practice_id);
    delete from app.member_invitations as i
    where i.id = p_invitation_id and i.practice_id = p_practice_id and i.status in ('pending', 'failed');
    if not found then
        raise exception 'no open invitation % in this practice', p_invitation_id using errcode = 'P0002';
    end if;
    return true;
end
$$;
comment on function private.cancel_member_invitation(uuid, bigint) is
'Owners: withdraw an invitation the worker has not sent yet (or that failed).';
revoke all on function private.cancel_member_invitation(uuid, bigint) from public;
grant execute on function private.cancel_member_invitation(uuid, bigint) to authenticated;

-- The worker's side (the role mx_worker, and the operator's `member invitations` command).

create function private.claim_member_invitation()
returns table (invitation_id bigint, practice_slug text, email text, role text, user_id uuid)
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    select i.id, p.slug, i.email, i.role, (
        select u.id from auth.users as u where lower(u.email) = i.email limit 1
    )
    from app.member_invitations as i
    inner join app.practices as p on p.id = i.practice_id
    where i.status = 'pending'
    order by i.requested_at
    limit 1
    for update of i skip locked
$$;
comment on function private.claim_member_invitation() is
'Worker: the oldest pending invitation, locked for this transaction (skip locked), with the address''s account when one exists.';
revoke all on function private.claim_member_invitation() from public;
grant execute on function private.claim_member_invitation() to mx_worker;

create function private.local_create_invited_user(p_email text)
returns uuid
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    insert into auth.users (email, invited_at) values (trim(p_email), now()) returning id
$$;
comment on function private.local_create_invited_user(text) is
'Local platform layer only (no Supabase Auth): the invited account, as the Auth admin API would create it.';
revoke all on function private.local_create_invited_user(text) from public;
grant execute on function private.local_create_invited_user(text) to mx_worker;

create function private.complete_member_invitation(p_invitation_id bigint, p_user_id uuid)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_invitation app.member_invitations;
    v_slug text;
    v_outcome text;
begin
    select i.* into v_invitation from app.member_invitations as i where i.id = p_invitation_id;
    if v_invitation.id is null then
        raise exception 'no invitation %', p_invitation_id using errcode = 'P0002';
    end if;
    select p.slug into v_slug from app.practices as p where p.id = v_invitation.practice_id;
    v_outcome := private.set_practice_member(v_slug, p_user_id, v_invitation.role);
    update app.member_invitations
    set status = 'sent', user_id = p_user_id, processed_at = now(), attempts = attempts + 1, error = null
    where id = p_invitation_id;
    return v_outcome;
end
$$;
comment on function private.complete_member_invitation(bigint, uuid) is
'Worker: the invitation was sent (or the account exists): give the role (private.set_practice_member) and mark it sent.';
revoke all on function private.complete_member_invitation(bigint, uuid) from public;
grant execute on function private.complete_member_invitation(bigint, uuid) to mx_worker;

create function private.fail_member_invitation(p_invitation_id bigint, p_error text)
returns void
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    update app.member_invitations
    set status = 'failed', processed_at = now(), attempts = attempts + 1, error = left(p_error, 500)
    where id = p_invitation_id
$$;
comment on function private.fail_member_invitation(bigint, text) is
'Worker: the invitation could not be sent; the owner sees why and may invite again.';
revoke all on function private.fail_member_invitation(bigint, text) from public;
grant execute on function private.fail_member_invitation(bigint, text) to mx_worker;

-- api: invoker wrappers, as the signed-in owner

create function api.practice_team(p_practice_id uuid)
returns table (
    user_id uuid, email text, role text, state text, invited_at timestamptz,
    confirmed_at timestamptz, last_sign_in_at timestamptz, added_at timestamptz,
    invitation_id bigint, invitation_error text
)
language sql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select * from private.practice_team(p_practice_id)
$$;
comment on function api.practice_team(uuid) is
'Owners: the practice''s staff (e-mail, role, state: confirmed, invited, unconfirmed, invitation pending/failed; last sign-in) and open invitations.';
revoke all on function api.practice_team(uuid) from public;
grant execute on function api.practice_team(uuid) to authenticated;

create function api.invite_practice_member(p_practice_id uuid, p_email text, p_role text)
returns text
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select private.invite_practice_member(p_practice_id, p_email, p_role)
$$;
comment on function api.invite_practice_member(uuid, text, text) is
'Owners: give an e-mail address a role (owner, admin, staff, viewer): added / role changed / unchanged at once for an existing confirmed or invited account, else "invitation queued" (the worker sends it).';
revoke all on function api.invite_practice_member(uuid, text, text) from public;
grant execute on function api.invite_practice_member(uuid, text, text) to authenticated;

create function api.set_practice_member_role(p_practice_id uuid, p_user_id uuid, p_role text)
returns text
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select private.set_member_role(p_practice_id, p_user_id, p_role)
$$;
comment on function api.set_practice_member_role(uuid, uuid, text) is
'Owners: change a member''s role (role changed / unchanged); the last owner cannot be demoted.';
revoke all on function api.set_practice_member_role(uuid, uuid, text) from public;
grant execute on function api.set_practice_member_role(uuid, uuid, text) to authenticated;

create function api.remove_practice_member(p_practice_id uuid, p_user_id uuid)
returns boolean
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select private.remove_member(p_practice_id, p_user_id)
$$;
comment on function api.remove_practice_member(uuid, uuid) is
'Owners: take someone out of the practice; the last owner cannot be removed.';
revoke all on function api.remove_practice_member(uuid, uuid) from public;
grant execute on function api.remove_practice_member(uuid, uuid) to authenticated;

create function api.cancel_member_invitation(p_practice_id uuid, p_invitation_id bigint)
returns boolean
language sql
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select private.cancel_member_invitation(p_practice_id, p_invitation_id)
$$;
comment on function api.cancel_member_invitation(uuid, bigint) is
'Owners: withdraw an open invitation.';
revoke all on function api.cancel_member_invitation(uuid, bigint) from public;
grant execute on function api.cancel_member_invitation(uuid, bigint) to authenticated;
