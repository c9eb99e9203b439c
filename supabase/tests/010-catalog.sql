-- Catalog rules every object of the project must follow. Each test queries the catalog,
-- so an object added later without RLS, a fixed search_path, a comment or the right
-- privileges fails here without anyone having to list it.
begin;
\ir _helpers.psql

select plan(41);

-- ---------------------------------------------------------------------------
-- Row-level security
-- ---------------------------------------------------------------------------
select ok(
    (
        select count(*) from pg_catalog.pg_class as c
        where c.relnamespace = 'app'::regnamespace and c.relkind in ('r', 'p')
    ) >= 14,
    'app holds the project''s tables (the RLS check below is not vacuous)'
);

select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace = 'app'::regnamespace
            and c.relkind in ('r', 'p')
            and not c.relrowsecurity
    $$,
    'every table in app has row-level security enabled'
);

select is_empty(
    $$
        select p.schemaname || '.' || p.tablename || ' ' || p.policyname
        from pg_catalog.pg_policies as p
        where p.schemaname = 'app' and p.roles <> array['authenticated']::name []
    $$,
    'every policy in app applies to authenticated only (never public or anon)'
);

-- Policies filter on practice_id: each table filtered that way has an index leading with it.
select is_empty(
    $$
        select distinct p.schemaname || '.' || p.tablename
        from pg_catalog.pg_policies as p
        where p.schemaname = 'app'
            and concat_ws(' ', p.qual, p.with_check) ~ '\mpractice_id\M'
            and not exists (
                select
                from pg_catalog.pg_index as i
                inner join pg_catalog.pg_attribute as a
                    on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
                where i.indrelid = format('%I.%I', p.schemaname, p.tablename)::regclass
                    and a.attname = 'practice_id'
                    and i.indpred is null
            )
    $$,
    'every table whose policy filters on practice_id has an index leading with practice_id'
);

-- ---------------------------------------------------------------------------
-- Functions: fixed search_path, no definer in api
-- ---------------------------------------------------------------------------
select ok(
    (
        select count(*) from pg_catalog.pg_proc as p
        where p.pronamespace = 'private'::regnamespace
    ) >= 30,
    'private holds the project''s functions (the checks below are not vacuous)'
);

select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace in ('api'::regnamespace, 'app'::regnamespace, 'private'::regnamespace)
            and not coalesce(p.proconfig, '{}') @> array['search_path=pg_catalog, pg_temp']
    $$,
    'every function in api, app and private has set search_path = pg_catalog, pg_temp'
);

-- An empty search path is exploitable: Postgres then resolves types and relations in the
-- caller's pg_temp first (015-search-path-hijack.sql plays the attack). Any definer function
-- of the database, in whatever schema outside the extensions, must name pg_temp last.
select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        inner join pg_catalog.pg_namespace as n on p.pronamespace = n.oid
        where p.prosecdef
            and n.nspname not in ('pg_catalog', 'information_schema')
            and n.nspname !~ '^pg_temp_'
            and not exists (
                select from pg_catalog.pg_depend as d
                where d.classid = 'pg_catalog.pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
            )
            and not exists (
                select from unnest(p.proconfig) as c (setting)
                where c.setting ~ '^search_path=(.*,\s*)?"?pg_temp"?$'
            )
    $$,
    'every security definer function names pg_temp last in its search path'
);

select ok(
    not has_database_privilege('public', current_database(), 'temporary'),
    'TEMPORARY on the database is revoked from PUBLIC'
);

select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'api'::regnamespace and p.prosecdef
    $$,
    'no function in api is security definer'
);

-- ---------------------------------------------------------------------------
-- Views of api run as the caller
-- ---------------------------------------------------------------------------
select ok(
    (select count(*) from pg_catalog.pg_class as c where c.relnamespace = 'api'::regnamespace and c.relkind = 'v')
    >= 11,
    'api holds the dashboard views'
);

select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace = 'api'::regnamespace
            and c.relkind in ('v', 'm')
            and not coalesce(c.reloptions, '{}') && array['security_invoker=true', 'security_invoker=on']
    $$,
    'every view in api is security_invoker = true'
);

select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace = 'api'::regnamespace and c.relkind in ('r', 'p', 'm', 'f')
    $$,
    'api holds no tables, only views'
);

-- ---------------------------------------------------------------------------
-- anon: nothing at all
-- ---------------------------------------------------------------------------
select is_empty(
    $$
        select n.nspname
        from pg_catalog.pg_namespace as n
        where n.nspname in ('app', 'private', 'vault', 'pgmq')
            and has_schema_privilege('anon', n.oid, 'usage, create')
    $$,
    'anon has no usage on schemas app, private, vault, pgmq'
);

select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace in (
            'api'::regnamespace, 'app'::regnamespace, 'private'::regnamespace,
            'vault'::regnamespace, 'pgmq'::regnamespace
        )
            and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and (
                has_table_privilege('anon', c.oid, 'select, insert, update, delete, truncate, references, trigger')
                or has_any_column_privilege('anon', c.oid, 'select, insert, update, references')
            )
    $$,
    'anon has no privilege on any table or view of api, app, private, vault, pgmq'
);

select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace in (
            'api'::regnamespace, 'app'::regnamespace, 'private'::regnamespace,
            'vault'::regnamespace, 'pgmq'::regnamespace
        )
            and case when c.relkind = 'S' then has_sequence_privilege('anon', c.oid, 'usage, select, update') end
    $$,
    'anon has no privilege on any sequence of api, app, private, vault, pgmq'
);

select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace in (
            'api'::regnamespace, 'app'::regnamespace, 'private'::regnamespace, 'vault'::regnamespace
        )
            and has_function_privilege('anon', p.oid, 'execute')
    $$,
    'anon may execute no function of api, app, private, vault'
);

select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'pgmq'::regnamespace
            and has_function_privilege('anon', p.oid, 'execute')
    $$,
    'anon may execute no pgmq function (not even through a later grant of usage on pgmq)'
);

-- ---------------------------------------------------------------------------
-- authenticated: api through RLS, two policy helpers in private and one checked definer
-- ---------------------------------------------------------------------------
-- private.request_event_replay(bigint) is the one deliberate exception to "definers are for
-- the service roles": api.replay_webhook_event (invoker) calls it for the event explorer, and
-- it checks the caller against private.current_admin_practice_ids() itself before replaying
-- (20261129100100_create_event_explorer.sql; behaviour tested in 100-event-explorer.sql).
-- private.request_sync(uuid) is the second, for the same reason: api.request_sync ("sync now")
-- calls it and it checks the caller is an owner or admin of the practice first
-- (20261201130000_create_sync_requests.sql; tested in 230-sync-requests.sql).
select set_eq(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'private'::regnamespace
            and has_function_privilege('authenticated', p.oid, 'execute')
    $$,
    array[
        'private.current_practice_ids()',
        'private.current_admin_practice_ids()',
        'private.request_event_replay(bigint)',
        'private.request_sync(uuid)',
        -- the payments filter (20261201180000): SQL text for api.list_payments / payment_totals
        'private.payment_filter_sql(text,text,text,uuid,boolean,date,date,text,boolean)',
        -- the viewer role (20261201140000): practices where the caller may edit
        'private.current_editor_practice_ids()',
        -- the Team page (20261201140100): each checks the caller is an owner first
        'private.practice_team(uuid)',
        'private.invite_practice_member(uuid,text,text)',
        'private.set_member_role(uuid,uuid,text)',
        'private.remove_member(uuid,uuid)',
        'private.cancel_member_invitation(uuid,bigint)',
        -- the operator view (20261201140200): checks the caller is in app.operators first
        'private.is_operator()',
        'private.operator_overview()'
    ],
    'authenticated may execute exactly the policy helpers of private and the checked definers'
);

select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace = 'private'::regnamespace
            and (
                has_table_privilege('authenticated', c.oid, 'select, insert, update, delete, truncate')
                or has_any_column_privilege('authenticated', c.oid, 'select, insert, update')
            )
    $$,
    'authenticated has no privilege on any relation of private'
);

select is_empty(
    $$
        select n.nspname
        from pg_catalog.pg_namespace as n
        where n.nspname in ('vault', 'pgmq') and has_schema_privilege('authenticated', n.oid, 'usage, create')
    $$,
    'authenticated has no usage on schemas vault and pgmq'
);

select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace in ('vault'::regnamespace, 'pgmq'::regnamespace)
            and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
            and (
                has_table_privilege('authenticated', c.oid, 'select, insert, update, delete, truncate')
                or has_any_column_privilege('authenticated', c.oid, 'select, insert, update')
            )
    $$,
    'authenticated has no privilege on any table, view or sequence of vault and pgmq'
);

select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace in ('vault'::regnamespace, 'pgmq'::regnamespace)
            and has_function_privilege('authenticated', p.oid, 'execute')
    $$,
    'authenticated may execute no vault or pgmq function'
);

select ok(
    not has_column_privilege('authenticated', 'app.merchant_accounts', 'credentials_secret_id', 'select'),
    'authenticated has no select on app.merchant_accounts.credentials_secret_id'
);

select hasnt_column(
    'api', 'merchant_accounts', 'credentials_secret_id',
    'api.merchant_accounts does not expose credentials_secret_id'
);

select ok(
    not has_table_privilege('authenticated', 'app.webhook_tokens', 'select, insert, update, delete, truncate')
    and not has_any_column_privilege('authenticated', 'app.webhook_tokens', 'select, insert, update'),
    'authenticated has no privilege on app.webhook_tokens'
);

-- The same rules, observed as a signed-in member of the account's practice.
select tests.create_practice('Catalog Clinic', 'catalog-clinic') as practice_id \gset
select tests.create_user('catalog-owner@example.test') as owner_id \gset
select tests.add_member(:'practice_id', :'owner_id', 'owner');
select tests.create_merchant_account(:'practice_id', 4242) as account_id \gset
select tests.authenticate_as(:'owner_id');

select results_eq(
    $$ select count(*) from app.merchant_accounts where mx_merchant_id = 4242 $$,
    array[1::bigint],
    'the owner sees the account itself'
);

select throws_ok(
    $$ select credentials_secret_id from app.merchant_accounts $$,
    '42501', null,
    'a member selecting credentials_secret_id gets permission denied'
);

select throws_ok(
    $$ select token_hash from app.webhook_tokens $$,
    '42501', null,
    'a member reading webhook_tokens gets permission denied'
);

select throws_ok(
    $$ select decrypted_secret from vault.decrypted_secrets $$,
    '42501', null,
    'a member reading the vault gets permission denied'
);

select throws_ok(
    $$ select * from private.merchant_credentials('$$ || :'account_id' || $$') $$,
    '42501', null,
    'a member calling private.merchant_credentials gets permission denied'
);

select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- Service roles: their own procedures and nothing else
-- ---------------------------------------------------------------------------
select set_eq(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'private'::regnamespace
            and has_function_privilege('mx_webhook', p.oid, 'execute')
    $$,
    array['private.ingest_webhook(text,jsonb,text,text,double precision,integer,integer)'],
    'mx_webhook may execute exactly private.ingest_webhook'
);

select set_eq(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace = 'private'::regnamespace
            and has_function_privilege('mx_worker', p.oid, 'execute')
    $$,
    array[
        -- ingest (20261129080800_create_service_roles.sql)
        'private.claim_ingest_events(integer,integer)',
        'private.extend_ingest_visibility(bigint,integer)',
        'private.retry_ingest_event(bigint,bigint,text,integer)',
        'private.dead_letter_ingest_event(bigint,bigint,text,boolean)',
        'private.apply_payment_event(bigint,bigint,timestamp with time zone,jsonb,jsonb,jsonb)',
        'private.merchant_credentials(uuid)',
        -- sync runs (20261129110000_create_sync_runs.sql)
        'private.sync_accounts(bigint)',
        'private.sync_due_accounts(text,interval)',
        'private.start_sync_run(uuid,text,text,timestamp with time zone,jsonb,bigint,interval)',
        'private.record_sync_progress(bigint,integer,integer,integer,jsonb)',
        'private.finish_sync_run(bigint,boolean,text,integer,integer,integer,jsonb,timestamp with time zone)',
        'private.reconcile_watermark(uuid)',
        'private.resumable_backfill(uuid)',
        'private.queue_sync_payments(bigint,jsonb)',
        -- contract sync (20261129110100_create_contract_sync.sql)
        'private.apply_contract(bigint,timestamp with time zone,jsonb,jsonb)',
        -- retention and overdue sweep (20261129110200_create_retention.sql)
        'private.prune_retention(integer,integer,integer,timestamp with time zone)',
        'private.mark_overdue_memberships(timestamp with time zone)',
        'private.sweep_memberships(timestamp with time zone)',
        -- alerts (20261129120000_create_alert_signals.sql)
        'private.queue_depths()',
        'private.alert_signals(double precision,double precision)',
        'private.alert_claim(text,text,text,text,integer)',
        'private.alert_release(text,text,text)',
        -- "sync now" requests (20261201130000_create_sync_requests.sql)
        'private.claim_sync_request(text,interval,integer)',
        'private.attach_sync_run(bigint,bigint)',
        'private.finish_sync_request(bigint,boolean,text)',
        'private.release_sync_request(bigint,interval)',
        'private.prune_sync_requests(integer,integer)',
        -- the Team page's invitations, sent by the worker (20261201140100)
        'private.claim_member_invitation()',
        'private.local_create_invited_user(text)',
        'private.complete_member_invitation(bigint,uuid)',
        'private.fail_member_invitation(bigint,text)'
    ],
    'mx_worker may execute exactly the 31 procedures the migrations grant it'
);

select is_empty(
    $$
        select r.rolname || ' ' || c.oid::regclass::text
        from pg_catalog.pg_class as c
        cross join (values ('mx_webhook'), ('mx_worker')) as r (rolname)
        where c.relnamespace in (
            'api'::regnamespace, 'app'::regnamespace, 'private'::regnamespace,
            'vault'::regnamespace, 'pgmq'::regnamespace
        )
            and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
            and (
                has_table_privilege(r.rolname, c.oid, 'select, insert, update, delete, truncate')
                or has_any_column_privilege(r.rolname, c.oid, 'select, insert, update')
            )
    $$,
    'the service roles touch no table directly (only through their procedures)'
);

select is_empty(
    $$
        select r.rolname || ' ' || p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        cross join (values ('mx_webhook'), ('mx_worker')) as r (rolname)
        where p.pronamespace in ('api'::regnamespace, 'app'::regnamespace, 'vault'::regnamespace)
            and has_function_privilege(r.rolname, p.oid, 'execute')
    $$,
    'the service roles may execute nothing in api, app or vault'
);

select ok(
    not exists (
        select from pg_catalog.pg_roles as r
        where r.rolname in ('mx_webhook', 'mx_worker') and (r.rolcanlogin or r.rolsuper or r.rolbypassrls)
    ),
    'the service group roles cannot log in, are not superusers and do not bypass RLS'
);

-- ---------------------------------------------------------------------------
-- Raw MX JSON stays server-side, and Realtime publishes nothing RLS cannot filter
-- ---------------------------------------------------------------------------
select is_empty(
    $$
        select a.attrelid::regclass::text || '.' || a.attname
        from pg_catalog.pg_attribute as a
        inner join pg_catalog.pg_class as c on a.attrelid = c.oid
        where c.relnamespace = 'app'::regnamespace
            and c.relkind in ('r', 'p')
            and a.attname in ('raw', 'raw_body', 'payload')
            and not a.attisdropped
            and has_column_privilege('authenticated', a.attrelid, a.attnum, 'select')
    $$,
    'authenticated may select no raw MX column (raw, raw_body, payload) of any app table'
);

-- Realtime does not filter DELETE (or TRUNCATE) events by RLS: they would reach every
-- subscriber of a table (issue 12, item 10).
select is_empty(
    $$
        select p.pubname
        from pg_catalog.pg_publication as p
        where p.pubname = 'supabase_realtime' and (p.pubdelete or p.pubtruncate or p.puballtables)
    $$,
    'supabase_realtime publishes no deletes and no truncates, and not all tables'
);

select is_empty(
    $$
        select t.schemaname || '.' || t.tablename
        from pg_catalog.pg_publication_tables as t
        inner join pg_catalog.pg_class as c on c.oid = format('%I.%I', t.schemaname, t.tablename)::regclass
        where t.pubname = 'supabase_realtime'
            and (t.schemaname <> 'app' or not c.relrowsecurity)
    $$,
    'every table supabase_realtime publishes is an app table under row-level security'
);

-- ---------------------------------------------------------------------------
-- Comments on everything
-- ---------------------------------------------------------------------------
select is_empty(
    $$
        select c.oid::regclass::text
        from pg_catalog.pg_class as c
        where c.relnamespace in ('app'::regnamespace, 'api'::regnamespace, 'private'::regnamespace)
            and c.relkind in ('r', 'p', 'v', 'm', 'f')
            and obj_description(c.oid, 'pg_class') is null
    $$,
    'every table and view in app, api and private has a comment'
);

select is_empty(
    $$
        select p.oid::regprocedure::text
        from pg_catalog.pg_proc as p
        where p.pronamespace in ('app'::regnamespace, 'api'::regnamespace, 'private'::regnamespace)
            and obj_description(p.oid, 'pg_proc') is null
    $$,
    'every function in app, api and private has a comment'
);

select is_empty(
    $$
        select n.nspname
        from pg_catalog.pg_namespace as n
        where n.nspname in ('app', 'api', 'private') and obj_description(n.oid, 'pg_namespace') is null
    $$,
    'schemas app, api and private have a comment'
);

select * from finish();
rollback;
