-- Per-user dashboard preferences (today: the columns shown in the memberships list), kept
-- in the database so that they follow the user from browser to browser. A user reads and
-- writes only their own row (RLS on auth.uid()); nothing here is practice data.

create table app.user_preferences (
    user_id uuid primary key references auth.users (id) on delete cascade,
    membership_columns text[] not null,
    updated_at timestamptz not null default now(),
    constraint user_preferences_known_columns check (
        membership_columns <@ array[
            'patient', 'programme', 'products', 'amount', 'status', 'started', 'last_paid',
            'next_billing', 'google_review', 'referral', 'fulfillment', 'notes'
        ]::text[]
    )
);
comment on table app.user_preferences is 'Dashboard preferences of each signed-in user (their own row only).';
comment on column app.user_preferences.membership_columns is
'Columns shown in the memberships list, in order (patient is always shown).';

alter table app.user_preferences enable row level security;

create policy user_preferences_select on app.user_preferences
for select to authenticated
using (user_id = (select auth.uid()));
create policy user_preferences_insert on app.user_preferences
for insert to authenticated
with check (user_id = (select auth.uid()));
create policy user_preferences_update on app.user_preferences
for update to authenticated
using (user_id = (select auth.uid()))
with check (user_id = (select auth.uid()));

grant select, insert (user_id, membership_columns), update (membership_columns, updated_at)
on app.user_preferences to authenticated;

create view api.user_preferences with (security_invoker = true) as
select
    p.user_id,
    p.membership_columns,
    p.updated_at
from app.user_preferences as p;
comment on view api.user_preferences is 'The requesting user''s own dashboard preferences.';
grant select on api.user_preferences to authenticated;

create function api.set_membership_columns(p_columns text[])
returns text[]
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_columns text [];
begin
    if auth.uid() is null then
        raise exception 'not signed in' using errcode = '42501';
    end if;
    -- patient always shown; duplicates dropped, order kept
    select pg_catalog.array_agg(c.name order by c.first_at)
    into v_columns
    from (
        select u.name, min(u.n) as first_at
        from pg_catalog.unnest(array['patient']::text [] || coalesce(p_columns, '{}')) with ordinality as u (name, n)
        group by u.name
    ) as c;
    insert into app.user_preferences as p (user_id, membership_columns)
    values (auth.uid(), v_columns)
    on conflict (user_id) do update
    set membership_columns = excluded.membership_columns, updated_at = pg_catalog.now();
    return v_columns;
exception when check_violation then
    raise exception 'unknown column in %', p_columns using errcode = '22023';
end
$$;
comment on function api.set_membership_columns(text[]) is
'Signed-in user: choose the columns of the memberships list (kept per user).';
grant execute on function api.set_membership_columns(text[]) to authenticated;
