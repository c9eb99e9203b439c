-- api.membership_tab_counts as PL/pgSQL, for the reason patient_detail is (20261129130200):
-- a SQL function with a SET clause is never inlined, so its body, two policy-filtered tables,
-- was planned again on every call. Planned once per session it takes half the time
-- (0.5 -> 0.27 ms for the largest practice, as a member and as the owner alike).
create or replace function api.membership_tab_counts(p_practice_id uuid)
returns table (tab text, category_id uuid, label text, sort_order integer, member_count bigint)
language plpgsql
stable
security invoker
set search_path = ''
as $$
begin
    return query
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
    order by 4, 3;
end
$$;
