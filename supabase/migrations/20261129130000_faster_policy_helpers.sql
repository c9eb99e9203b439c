-- The policy helpers, rewritten for speed (docs/benchmarks.md, "Findings").
--
-- Every policy calls private.current_practice_ids() once per table a query touches. As a SQL
-- function its body was planned again on every call (SQL functions keep no plan across
-- statements) and `(select auth.uid())` added an init plan: ~85 µs a call, 0.2-0.3 ms on a
-- three-table list, which made RLS cost 1.4-2x the owner's time on millisecond queries.
-- PL/pgSQL keeps the lookup's plan for the session, and reading the user id into a variable
-- first makes it a plain index lookup: ~20 µs a call. Same results, same grants.
create or replace function private.current_practice_ids()
returns uuid[]
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_user_id uuid := auth.uid();
    v_practice_ids uuid[];
begin
    select coalesce(array_agg(m.practice_id), '{}')
    into v_practice_ids
    from app.practice_members as m
    where m.user_id = v_user_id;
    return v_practice_ids;
end
$$;

create or replace function private.current_admin_practice_ids()
returns uuid[]
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_user_id uuid := auth.uid();
    v_practice_ids uuid[];
begin
    select coalesce(array_agg(m.practice_id), '{}')
    into v_practice_ids
    from app.practice_members as m
    where m.user_id = v_user_id and m.role in ('owner', 'admin');
    return v_practice_ids;
end
$$;

-- A programme (category) belongs to one practice, so practice_id adds nothing once
-- category_id is known. Without this the planner multiplied the two selectivities (a
-- programme tab of 1,302 rows estimated at 180 on a test set) and, under RLS, whose filter it
-- counts as halving the rows again, sorted the whole programme instead of walking the name
-- index to the 50 rows of a page.
create statistics app.memberships_practice_category_stats (dependencies)
on practice_id, category_id from app.memberships;
analyze app.memberships;
