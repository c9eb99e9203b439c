-- Operators: the people who run the service (not practice staff). An operator is a signed-in
-- user listed in app.operators (managed by `python -m worker operator add|remove EMAIL`);
-- api.operator_overview() gives them the facts of `python -m worker status` for every
-- practice and merchant account, through a definer that checks the caller first. Operators
-- need no practice membership, and being one gives no access to any practice's data.

create table app.operators (
    user_id uuid primary key references auth.users (id) on delete cascade,
    added_at timestamptz not null default now()
);
comment on table app.operators is 'Users who may see the operator view (every practice''s health); managed by `python -m worker operator`.';
-- nobody reads it but the private functions below
alter table app.operators enable row level security;

create function private.is_operator()
returns boolean
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select exists (select from app.operators as o where o.user_id = (select auth.uid()))
$$;
comment on function private.is_operator() is 'Whether the requesting user is an operator.';
revoke all on function private.is_operator() from public;
grant execute on function private.is_operator() to authenticated;

create function private.operator_overview()
returns jsonb
language plpgsql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
    if not private.is_operator() then
        raise exception 'only operators may see the operator view' using errcode = '42501';
    end if;
    return private.operator_status() || pg_catalog.jsonb_build_object(
        'practices', coalesce((
            select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(p) order by p.slug)
            from private.operator_practices() as p
        ), '[]'),
        'merchant_accounts', coalesce((
            select pg_catalog.jsonb_agg(
                pg_catalog.to_jsonb(a) || pg_catalog.jsonb_build_object(
                    'queued_events', (
                        select count(*) from app.webhook_events as e
                        inner join app.merchant_accounts as m on m.id = e.merchant_account_id
                        where m.mx_merchant_id = a.mx_merchant_id and e.status in ('queued', 'retrying')
                    ),
                    'oldest_queued_at', (
                        select min(e.received_at) from app.webhook_events as e
                        inner join app.merchant_accounts as m on m.id = e.merchant_account_id
                        where m.mx_merchant_id = a.mx_merchant_id and e.status in ('queued', 'retrying')
                    ),
                    'dead_events', (
                        select count(*) from app.webhook_events as e
                        inner join app.merchant_accounts as m on m.id = e.merchant_account_id
                        where m.mx_merchant_id = a.mx_merchant_id and e.status = 'dead'
                    )
                )
                order by a.practice_slug, a.mx_merchant_id
            )
            from private.operator_merchant_accounts() as a
        ), '[]')
    );
end
$$;
comment on function private.operator_overview() is
'Operators only: private.operator_status() (queues, events of 24 h, per merchant last event, failing credentials, last reconcile) plus every practice and merchant account with its queued and dead events.';
revoke all on function private.operator_overview() from public;
grant execute on function private.operator_overview() to authenticated;

create function private.add_operator(p_email text)
returns text
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_user auth.users;
begin
    select u.* into v_user from auth.users as u where lower(u.email) = lower(trim(p_email)) limit 1;
    if v_user.id is null then
        raise exception 'no account with the e-mail %', p_email using errcode = 'P0002',
        hint = 'the person signs in once (or is invited) first';
    end if;
    if v_user.email_confirmed_at is null and v_user.invited_at is null and v_user.last_sign_in_at is null then
        raise exception 'the account of % has not confirmed its e-mail address', p_email using errcode = '42501';
    end if;
    insert into app.operators (user_id) values (v_user.id) on conflict (user_id) do nothing;
    return case when found then 'added' else 'unchanged' end;
end
$$;
comment on function private.add_operator(text) is 'Operator command: make the account with this e-mail an operator.';
revoke all on function private.add_operator(text) from public;

create function private.remove_operator(p_email text)
returns boolean
language sql
security definer
set search_path = pg_catalog, pg_temp
as $$
    with removed as (
        delete from app.operators as o
        using auth.users as u
        where o.user_id = u.id and lower(u.email) = lower(trim(p_email))
        returning 1
    )
    select exists (select from removed)
$$;
comment on function private.remove_operator(text) is 'Operator command: the account with this e-mail is no longer an operator.';
revoke all on function private.remove_operator(text) from public;

create function private.operator_list()
returns table (email text, user_id uuid, added_at timestamptz)
language sql
stable
security definer
set search_path = pg_catalog, pg_temp
as $$
    select u.email::text, o.user_id, o.added_at
    from app.operators as o inner join auth.users as u on u.id = o.user_id
    order by u.email
$$;
comment on function private.operator_list() is 'Operator command: every operator.';
revoke all on function private.operator_list() from public;

create function api.is_operator()
returns boolean
language sql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select private.is_operator()
$$;
comment on function api.is_operator() is 'Whether the signed-in user is an operator (the dashboard shows the operator view then).';
revoke all on function api.is_operator() from public;
grant execute on function api.is_operator() to authenticated;

create function api.operator_overview()
returns jsonb
language sql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select private.operator_overview()
$$;
comment on function api.operator_overview() is
'Operators only (42501 otherwise): queues, events of 24 h, every practice and merchant account with last event, failing credentials, queued and dead events, last reconcile.';
revoke all on function api.operator_overview() from public;
grant execute on function api.operator_overview() to authenticated;
