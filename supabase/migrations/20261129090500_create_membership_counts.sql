-- Tab counts without counting: one row per (practice, programme, status) kept current by
-- a trigger on memberships. Counting a large practice's memberships under RLS took 10-20 ms
-- at 50k memberships (docs/benchmarks.md); reading a few counter rows takes well under one.
-- Memberships change status or programme far less often than they receive payments, and the
-- trigger fires only on those changes, so the counter rows see little contention.

create table app.membership_counts (
    practice_id uuid not null references app.practices (id) on delete cascade,
    category_id uuid not null,
    status text not null,
    member_count bigint not null default 0 check (member_count >= 0),
    primary key (practice_id, category_id, status),
    foreign key (practice_id, category_id) references app.categories (practice_id, id) on delete cascade
);
comment on table app.membership_counts is
'Memberships per practice, programme and status, maintained by a trigger (the dashboard tabs).';

alter table app.membership_counts enable row level security;
grant select on app.membership_counts to authenticated;

create policy membership_counts_select on app.membership_counts
for select to authenticated
using (practice_id in (select unnest(private.current_practice_ids())));

create function private.count_membership(
    p_practice_id uuid, p_category_id uuid, p_status text, p_delta integer
)
returns void
language sql
security definer
set search_path = ''
as $$
    insert into app.membership_counts as c (practice_id, category_id, status, member_count)
    values (p_practice_id, p_category_id, p_status, greatest(p_delta, 0))
    on conflict (practice_id, category_id, status) do update
    set member_count = c.member_count + p_delta
$$;
comment on function private.count_membership(uuid, uuid, text, integer) is
'Add p_delta to one membership counter.';

create function private.maintain_membership_counts()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        perform private.count_membership(old.practice_id, old.category_id, old.status, -1);
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        perform private.count_membership(new.practice_id, new.category_id, new.status, 1);
    end if;
    return null;
end
$$;
comment on function private.maintain_membership_counts() is
'Trigger: keep app.membership_counts equal to the memberships it counts.';

create trigger memberships_maintain_counts
after insert or delete on app.memberships
for each row execute function private.maintain_membership_counts();

create trigger memberships_maintain_counts_on_change
after update of practice_id, category_id, status on app.memberships
for each row
when (
    old.practice_id is distinct from new.practice_id
    or old.category_id is distinct from new.category_id
    or old.status is distinct from new.status
)
execute function private.maintain_membership_counts();

-- Recount from the memberships (after a bulk load that bypassed triggers, or to check).
create function private.rebuild_membership_counts(p_practice_id uuid default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_rows bigint;
begin
    delete from app.membership_counts as c
    where p_practice_id is null or c.practice_id = p_practice_id;
    insert into app.membership_counts (practice_id, category_id, status, member_count)
    select m.practice_id, m.category_id, m.status, count(*)
    from app.memberships as m
    where p_practice_id is null or m.practice_id = p_practice_id
    group by m.practice_id, m.category_id, m.status;
    get diagnostics v_rows = row_count;
    return v_rows;
end
$$;
comment on function private.rebuild_membership_counts(uuid) is
'Recount app.membership_counts from app.memberships (one practice, or all).';

select private.rebuild_membership_counts();

create or replace function api.membership_tab_counts(p_practice_id uuid)
returns table (tab text, category_id uuid, label text, sort_order integer, member_count bigint)
language sql
stable
security invoker
set search_path = ''
as $$
    with per_category as (
        select
            mc.category_id,
            sum(mc.member_count) as n,
            sum(mc.member_count) filter (where mc.status in ('paused', 'canceled')) as cancels
        from app.membership_counts as mc
        where mc.practice_id = p_practice_id
        group by mc.category_id
    )

    select 'all', null::uuid, 'All', 0, coalesce(sum(pc.n), 0)::bigint
    from per_category as pc
    union all
    select c.id::text, c.id, c.name, c.sort_order, coalesce(pc.n, 0)::bigint
    from app.categories as c
    left join per_category as pc on c.id = pc.category_id
    where c.practice_id = p_practice_id
    union all
    select 'cancellations', null::uuid, 'Cancellations', 100000, coalesce(sum(pc.cancels), 0)::bigint
    from per_category as pc
    order by 4, 3
$$;
comment on function api.membership_tab_counts(uuid) is
'One row per dashboard tab (All, each programme, Cancellations) with its membership count, '
'read from the maintained counters.';
