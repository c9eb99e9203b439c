-- Practices (the tenants), their members, and their programme categories.

create table app.practices (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(trim(name)) > 0),
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    timezone text not null default 'UTC',
    auto_apply_suggestions boolean not null default false,
    past_due_grace_days integer not null default 7 check (past_due_grace_days between 0 and 90),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
comment on table app.practices is 'A medical practice: the tenant every other row belongs to.';

create table app.practice_members (
    practice_id uuid not null references app.practices (id) on delete cascade,
    user_id uuid not null references auth.users (id) on delete cascade,
    role text not null check (role in ('owner', 'admin', 'staff')),
    created_at timestamptz not null default now(),
    primary key (practice_id, user_id)
);
create index practice_members_user_id_idx on app.practice_members (user_id);
comment on table app.practice_members is 'Staff of a practice (Supabase Auth users) and their role.';

create table app.categories (
    id uuid primary key default gen_random_uuid(),
    practice_id uuid not null references app.practices (id) on delete cascade,
    name text not null check (length(trim(name)) > 0),
    kind text not null default 'programme' check (kind in ('programme', 'uncategorized')),
    sort_order integer not null default 100,
    created_at timestamptz not null default now(),
    unique (practice_id, id)
);
create unique index categories_practice_name_idx on app.categories (practice_id, lower(name));
create unique index categories_one_uncategorized_idx on app.categories (practice_id)
where kind = 'uncategorized';
comment on table app.categories is
'A practice''s programmes (TRT, Weight Loss, ...) and its one Uncategorized bucket.';

-- ---------------------------------------------------------------------------
-- Who is asking: helpers for policies. Definer so they can read practice_members
-- without recursing into its own policies; they only ever answer for auth.uid().
-- ---------------------------------------------------------------------------
create function private.current_practice_ids()
returns uuid[]
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(array_agg(m.practice_id), '{}')
    from app.practice_members as m
    where m.user_id = (select auth.uid())
$$;
comment on function private.current_practice_ids() is 'Practices the requesting user belongs to.';

create function private.current_admin_practice_ids()
returns uuid[]
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(array_agg(m.practice_id), '{}')
    from app.practice_members as m
    where m.user_id = (select auth.uid()) and m.role in ('owner', 'admin')
$$;
comment on function private.current_admin_practice_ids() is
'Practices where the requesting user is an owner or an admin.';

-- Policies call these helpers as the requesting role, so authenticated may execute
-- exactly these two; private stays unexposed (it is not in the API's schemas).
grant usage on schema private to authenticated;
grant execute on function private.current_practice_ids() to authenticated;
grant execute on function private.current_admin_practice_ids() to authenticated;

-- ---------------------------------------------------------------------------
-- Every practice starts with the same programme list.
-- ---------------------------------------------------------------------------
create function private.seed_practice_categories()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    insert into app.categories (practice_id, name, kind, sort_order)
    values
        (new.id, 'TRT', 'programme', 10),
        (new.id, 'Weight Loss', 'programme', 20),
        (new.id, 'Peptides', 'programme', 30),
        (new.id, 'ED', 'programme', 40),
        (new.id, 'Other', 'programme', 90),
        (new.id, 'Uncategorized', 'uncategorized', 1000);
    return new;
end
$$;
comment on function private.seed_practice_categories() is 'Trigger: give a new practice the default programmes.';

create trigger practices_seed_categories
after insert on app.practices
for each row execute function private.seed_practice_categories();

create function private.uncategorized_id(practice_id uuid)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
    select c.id from app.categories as c
    where c.practice_id = uncategorized_id.practice_id and c.kind = 'uncategorized'
$$;
comment on function private.uncategorized_id(uuid) is 'The Uncategorized bucket of a practice.';

create function private.touch_updated_at()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
    new.updated_at := now();
    return new;
end
$$;
comment on function private.touch_updated_at() is 'Trigger: keep updated_at current.';

create trigger practices_touch_updated_at
before update on app.practices
for each row execute function private.touch_updated_at();

-- ---------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------
alter table app.practices enable row level security;
alter table app.practice_members enable row level security;
alter table app.categories enable row level security;

grant select (id, name, slug, timezone, auto_apply_suggestions, past_due_grace_days, created_at)
on app.practices to authenticated;
grant update (name, timezone, auto_apply_suggestions, past_due_grace_days)
on app.practices to authenticated;

create policy practices_select on app.practices
for select to authenticated
using (id = any((select private.current_practice_ids())::uuid[]));

create policy practices_update on app.practices
for update to authenticated
using (id = any((select private.current_admin_practice_ids())::uuid[]))
with check (id = any((select private.current_admin_practice_ids())::uuid[]));

grant select on app.practice_members to authenticated;

create policy practice_members_select on app.practice_members
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

grant select on app.categories to authenticated;
grant insert (practice_id, name, sort_order), update (name, sort_order)
on app.categories to authenticated;

create policy categories_select on app.categories
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy categories_insert on app.categories
for insert to authenticated
with check (practice_id = any((select private.current_admin_practice_ids())::uuid[]) and kind = 'programme');

create policy categories_update on app.categories
for update to authenticated
using (practice_id = any((select private.current_admin_practice_ids())::uuid[]) and kind = 'programme')
with check (practice_id = any((select private.current_admin_practice_ids())::uuid[]) and kind = 'programme');
