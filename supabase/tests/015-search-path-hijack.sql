-- Issue 12, item 1: the pg_temp hijack of security-definer functions, played for real.
--
-- The attack: a caller creates a type in its session's temporary schema under the name of a
-- built-in one (a domain pg_temp.uuid or pg_temp.text) whose check calls the caller's own
-- function, then calls a definer function whose body names that type. With
-- `search_path = ''` Postgres looks up types in pg_temp first, so the check ran as the
-- function's owner and could read every practice's MX credentials from Vault.
-- Fixed by 20261130100000_pin_search_path_pg_temp_last.sql: TEMPORARY is revoked from PUBLIC
-- (the attacker cannot create the type) and every function searches pg_catalog before
-- pg_temp (the type would not be found even if it existed). Both are checked here.
--
-- The attack part runs first, before anything in this session calls the two functions:
-- PL/pgSQL resolves a function's type names when it first compiles it in a session.
begin;
\ir _helpers.psql

select plan(9);

select tests.create_practice('Hijack Clinic', 'hijack-clinic') as practice_id \gset
select tests.create_user('hijack-owner@example.test') as owner_id \gset
select tests.add_member(:'practice_id', :'owner_id', 'owner');
select tests.create_merchant_account(:'practice_id', 7171) as account_id \gset

-- ---------------------------------------------------------------------------
-- 1. No client or service role may create temporary objects in this database
-- ---------------------------------------------------------------------------
select is_empty(
    $$
        select r.rolname
        from pg_catalog.pg_roles as r
        where r.rolname in ('anon', 'authenticated', 'mx_webhook', 'mx_worker')
            and has_database_privilege(r.rolname, current_database(), 'temporary')
    $$,
    'anon, authenticated, mx_webhook and mx_worker may not create temporary objects'
);

select tests.authenticate_as(:'owner_id');
select throws_ok(
    $$ create domain pg_temp.probe_domain as pg_catalog.uuid $$,
    '42501', null,
    'a signed-in user creating a type in pg_temp gets permission denied'
);
select tests.clear_authentication();

set local role mx_webhook;
select throws_ok(
    $$ create function pg_temp.probe_function() returns pg_catalog.int4 language sql as 'select 1' $$,
    '42501', null,
    'the webhook role creating a function in pg_temp gets permission denied'
);
reset role;

-- ---------------------------------------------------------------------------
-- 2. Even with TEMPORARY (granted back by mistake, or a role that has it), a type in pg_temp
--    never replaces a built-in one inside the project's functions. The session's owner plants
--    the attacker's objects; the calls below run as the attacked roles.
-- ---------------------------------------------------------------------------
-- The attacker's code proves it ran with the owner's rights by reading Vault, then counts
-- itself in a sequence (a sequence keeps its count even when the statement fails later).
create sequence tests.hijacks;
create function pg_temp.hijack()
returns pg_catalog.bool
language plpgsql
as $$
begin
    perform pg_catalog.count(*) from vault.decrypted_secrets;
    perform pg_catalog.nextval('tests.hijacks');
    return true;
end
$$;
grant execute on function pg_temp.hijack() to authenticated, mx_webhook;

-- private.current_practice_ids() declares `v_user_id uuid`; authenticated may call it over
-- plain SQL (every policy calls it)
create domain pg_temp.uuid as pg_catalog.uuid check (pg_temp.hijack());
select tests.authenticate_as(:'owner_id');
do $attack$
begin
    perform pg_catalog.set_config(
        'tests.practice_ids', pg_catalog.array_to_string(private.current_practice_ids(), ','), false
    );
exception when others then
    null;  -- the attack may break the call; what counts is whether the attacker's code ran
end
$attack$;
select tests.clear_authentication();
drop domain pg_temp.uuid;
select pg_catalog.nextval('tests.hijacks') - 1 as after_current_practice_ids \gset
select pg_catalog.setval('tests.hijacks', 1, false);

-- private.ingest_webhook declares text variables; mx_webhook calls it
create domain pg_temp.text as pg_catalog.text check (pg_temp.hijack());
set local role mx_webhook;
do $attack$
begin
    perform pg_catalog.set_config(
        'tests.ingest_outcome',
        (select w.outcome from private.ingest_webhook(
            'no-such-token-0123456789abcdef0123456789', '{"eventType": "PaymentSuccess"}', null, null
        ) as w),
        false
    );
exception when others then
    null;
end
$attack$;
reset role;
drop domain pg_temp.text;
select pg_catalog.nextval('tests.hijacks') - 1 as after_ingest_webhook \gset

select is(
    :after_current_practice_ids::pg_catalog.int8, 0::pg_catalog.int8,
    'private.current_practice_ids() as authenticated never runs the check of a pg_temp.uuid'
);
select is(
    :after_ingest_webhook::pg_catalog.int8, 0::pg_catalog.int8,
    'private.ingest_webhook as mx_webhook never runs the check of a pg_temp.text'
);
select is(
    pg_catalog.current_setting('tests.practice_ids', true), :'practice_id'::pg_catalog.text,
    'the attacked policy helper still answered with the caller''s practice'
);
select is(
    pg_catalog.current_setting('tests.ingest_outcome', true), 'unknown_token',
    'the attacked webhook call still answered normally'
);

-- ---------------------------------------------------------------------------
-- 3. The same resolution rule for every function of the project, read from the catalog
-- ---------------------------------------------------------------------------
select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace in ('api'::regnamespace, 'app'::regnamespace, 'private'::regnamespace)
            and p.prosecdef
            and not exists (
                select from unnest(p.proconfig) as c (setting)
                where c.setting ~ '^search_path=(.*,\s*)?"?pg_temp"?$'
            )
    $$,
    'every definer function names pg_temp last in its search path'
);

select tests.authenticate_as(:'owner_id');
select results_eq(
    $$ select id from app.practices $$,
    array[:'practice_id'::pg_catalog.uuid],
    'after the attack the owner still sees exactly their practice'
);
select tests.clear_authentication();

select * from finish();
rollback;
