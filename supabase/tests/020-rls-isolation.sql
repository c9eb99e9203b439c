-- Tenant isolation: two practices with data in every table, six people, every relation a
-- client can read. A member sees exactly their practice's rows, an outsider nothing, anon
-- is refused; owner/admin-only relations show nothing to staff; shipped data without a
-- practice is the same for every signed-in user; writes are limited to what each role may
-- change in its own practice.
begin;
\ir _helpers.psql

select plan(399);

-- ---------------------------------------------------------------------------
-- Fixtures: practice A (two patients, three memberships) and practice B (one of each);
-- A has an owner, an admin and a staff member, B an owner and a staff member
-- ---------------------------------------------------------------------------
select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_user('owner-a@example.test') as owner_a \gset
select tests.create_user('admin-a@example.test') as admin_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('owner-b@example.test') as owner_b \gset
select tests.create_user('staff-b@example.test') as staff_b \gset
select tests.create_user('nobody@example.test') as nobody \gset
select tests.add_member(:'practice_a', :'owner_a', 'owner');
select tests.add_member(:'practice_a', :'admin_a', 'admin');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'owner_b', 'owner');
select tests.add_member(:'practice_b', :'staff_b', 'staff');
select tests.create_merchant_account(:'practice_a', 1001) as account_a \gset
select tests.create_merchant_account(:'practice_b', 2002) as account_b \gset
select tests.map_product(:'practice_a', 'Testosterone', 'TRT');
select tests.map_product(:'practice_b', 'BPC-157', 'Peptides');

select tests.process_payment(
    1001,
    tests.payment_json(11001, 1001, '2026-01-05 10:00+00', p_customer_name => 'Alice A'),
    tests.invoice_json(21001, 501, 'Alice A', array['Testosterone', 'Semaglutide'])
);
select tests.process_payment(
    1001,
    tests.payment_json(11002, 1001, '2026-01-06 10:00+00', p_customer_name => 'Adam A'),
    tests.invoice_json(21002, 502, 'Adam A', array['Testosterone'])
);
select tests.process_payment(
    2002,
    tests.payment_json(12001, 2002, '2026-01-07 10:00+00', p_customer_name => 'Bob B'),
    tests.invoice_json(22001, 601, 'Bob B', array['BPC-157'])
);

-- No procedure writes contracts yet: the worker's record, inserted as the database owner.
insert into app.contracts (id, practice_id, merchant_account_id, name, status, raw, fetched_at)
values
(31001, :'practice_a', :'account_a', 'TRT monthly', 'Active', '{}', now()),
(31002, :'practice_a', :'account_a', 'TRT monthly', 'Active', '{}', now()),
(32001, :'practice_b', :'account_b', 'Peptides monthly', 'Active', '{}', now());

-- Rows in both practices for the relations of the membership, operations and sync work.
-- (app.referral_sources is seeded with every practice; app.default_category_rules is shipped.)
-- A keyword rule of each practice (as the database owner: admin writes are tested in 060).
insert into app.category_rules (practice_id, keyword, category_id)
values
(:'practice_a', 'fixture-a', tests.category_id(:'practice_a', 'Other')),
(:'practice_b', 'fixture-b', tests.category_id(:'practice_b', 'Other'));
-- A confirmation of each practice's mapped product: logged in the change log, nothing moves.
insert into app.product_category_changes (practice_id, product_id, to_category_id)
select
    p.practice_id,
    p.id,
    p.category_id
from app.products as p
where p.name in ('Testosterone', 'BPC-157');
-- A workflow edit of one membership per practice: the audit trigger logs it.
update app.memberships set notes = 'fixture note'
where id in (select distinct on (m.practice_id) m.id from app.memberships as m order by m.practice_id, m.id);
-- An operator replay of one processed event per practice.
select is(
    (
        select array_agg(r.outcome order by r.event_id)
        from private.replay_events(
                array(select e.id from app.webhook_events as e where e.payment_id in (11002, 12001)),
                'operator', null, array['processed']
            ) as r
    ),
    array['replayed', 'replayed'],
    'fixture: the operator replayed one processed event of each practice'
);
-- A sync run per merchant account, and a payment billed by a contract of each practice.
select private.start_sync_run(:'account_a', 'reconcile');
select private.start_sync_run(:'account_b', 'reconcile');
-- A "sync now" request per practice (as the database owner: asking is tested in 230).
insert into app.sync_requests (practice_id, merchant_account_id)
values (:'practice_a', :'account_a'), (:'practice_b', :'account_b');
insert into app.contract_payments (contract_id, payment_id, practice_id)
values
(31001, 11001, :'practice_a'),
(32001, 12001, :'practice_b');

select is(
    (select count(*) from app.memberships where practice_id = :'practice_a'),
    3::bigint,
    'fixture: practice A has three memberships (Alice TRT and Uncategorized, Adam TRT)'
);

-- ---------------------------------------------------------------------------
-- The read matrix, seven assertions per relation
-- ---------------------------------------------------------------------------
create function tests.check_isolation(
    p_relation regclass, p_practice_column text, p_a uuid, p_b uuid,
    p_readers uuid[], p_reader_names text[], p_staff_b uuid, p_nobody uuid
)
returns setof text
language plpgsql
-- pgTAP resolves its own helpers through the search path
set search_path = extensions
as $$
declare
    v_count_sql text := format(
        'select count(*), count(*) filter (where %1$I = $1) from %2$s', p_practice_column, p_relation
    );
    v_a bigint;
    v_b bigint;
    v_total bigint;
    v_own bigint;
    v_i integer;
begin
    -- as the database owner (RLS does not apply): what each practice holds
    execute v_count_sql into v_total, v_a using p_a;
    execute v_count_sql into v_total, v_b using p_b;
    return next extensions.ok(
        v_a > 0 and v_b > 0,
        format('%s: fixtures in both practices (A %s rows, B %s rows)', p_relation, v_a, v_b)
    );

    for v_i in 1 .. pg_catalog.cardinality(p_readers) loop
        perform tests.authenticate_as(p_readers[v_i]);
        execute v_count_sql into v_total, v_own using p_a;
        perform tests.clear_authentication();
        return next extensions.is(
            array[v_total, v_own], array[v_a, v_a],
            format('%s: %s of A sees exactly A''s %s rows', p_relation, p_reader_names[v_i], v_a)
        );
    end loop;

    perform tests.authenticate_as(p_staff_b);
    execute v_count_sql into v_total, v_own using p_b;
    perform tests.clear_authentication();
    return next extensions.is(
        array[v_total, v_own], array[v_b, v_b],
        format('%s: staff of B sees B''s %s rows and none of A''s', p_relation, v_b)
    );

    perform tests.authenticate_as(p_nobody);
    execute v_count_sql into v_total, v_own using p_a;
    perform tests.clear_authentication();
    return next extensions.is(v_total, 0::bigint, format('%s: a user of no practice sees nothing', p_relation));

    perform tests.authenticate_as_anon();
    return next extensions.throws_ok(
        format('select count(*) from %s', p_relation), '42501', null,
        format('%s: anon gets permission denied', p_relation)
    );
    perform tests.clear_authentication();
end
$$;

-- Owner/admin-only relations, eight assertions each. Their rows are counted, as the database
-- owner, in p_source (the table they show): a view that filters on
-- private.current_admin_practice_ids() shows nothing to the database owner itself.
create function tests.check_admin_isolation(
    p_relation regclass, p_source regclass, p_practice_column text, p_a uuid, p_b uuid,
    p_admins uuid[], p_admin_names text[], p_staff_a uuid, p_admin_b uuid, p_staff_b uuid, p_nobody uuid
)
returns setof text
language plpgsql
-- pgTAP resolves its own helpers through the search path
set search_path = extensions
as $$
declare
    v_count_sql text := format(
        'select count(*), count(*) filter (where %1$I = $1) from %2$s', p_practice_column, p_relation
    );
    v_source_sql text := format('select count(*) filter (where %1$I = $1) from %2$s', p_practice_column, p_source);
    v_a bigint;
    v_b bigint;
    v_total bigint;
    v_own bigint;
    v_i integer;
begin
    execute v_source_sql into v_a using p_a;
    execute v_source_sql into v_b using p_b;
    return next extensions.ok(
        v_a > 0 and v_b > 0,
        format('%s: fixtures in both practices (%s: A %s rows, B %s rows)', p_relation, p_source, v_a, v_b)
    );

    for v_i in 1 .. pg_catalog.cardinality(p_admins) loop
        perform tests.authenticate_as(p_admins[v_i]);
        execute v_count_sql into v_total, v_own using p_a;
        perform tests.clear_authentication();
        return next extensions.is(
            array[v_total, v_own], array[v_a, v_a],
            format('%s: %s of A sees exactly A''s %s rows', p_relation, p_admin_names[v_i], v_a)
        );
    end loop;

    perform tests.authenticate_as(p_staff_a);
    execute v_count_sql into v_total, v_own using p_a;
    perform tests.clear_authentication();
    return next extensions.is(v_total, 0::bigint, format('%s: staff of A sees nothing (owners/admins only)', p_relation));

    perform tests.authenticate_as(p_admin_b);
    execute v_count_sql into v_total, v_own using p_b;
    perform tests.clear_authentication();
    return next extensions.is(
        array[v_total, v_own], array[v_b, v_b],
        format('%s: owner of B sees B''s %s rows and none of A''s', p_relation, v_b)
    );

    perform tests.authenticate_as(p_staff_b);
    execute v_count_sql into v_total, v_own using p_b;
    perform tests.clear_authentication();
    return next extensions.is(v_total, 0::bigint, format('%s: staff of B sees nothing', p_relation));

    perform tests.authenticate_as(p_nobody);
    execute v_count_sql into v_total, v_own using p_a;
    perform tests.clear_authentication();
    return next extensions.is(v_total, 0::bigint, format('%s: a user of no practice sees nothing', p_relation));

    perform tests.authenticate_as_anon();
    return next extensions.throws_ok(
        format('select count(*) from %s', p_relation), '42501', null,
        format('%s: anon gets permission denied', p_relation)
    );
    perform tests.clear_authentication();
end
$$;

-- Shipped data without a practice (no tenant to isolate): every signed-in user, member of a
-- practice or not, reads exactly the same rows, all of them; anon is refused.
create function tests.check_shared(p_relation regclass, p_readers uuid[], p_reader_names text[])
returns setof text
language plpgsql
-- pgTAP resolves its own helpers through the search path
set search_path = extensions
as $$
declare
    v_digest_sql text := format(
        'select count(*)::text || '' rows '' || md5(coalesce(string_agg(t::text, '','' order by t::text), '''')) '
        'from %s as t',
        p_relation
    );
    v_all text;
    v_seen text;
    v_i integer;
begin
    execute v_digest_sql into v_all;
    return next extensions.ok(
        v_all !~ '^0 rows', format('%s: shipped rows to read (%s)', p_relation, v_all)
    );

    for v_i in 1 .. pg_catalog.cardinality(p_readers) loop
        perform tests.authenticate_as(p_readers[v_i]);
        execute v_digest_sql into v_seen;
        perform tests.clear_authentication();
        return next extensions.is(
            v_seen, v_all, format('%s: %s reads every shipped row, the same as everyone', p_relation, p_reader_names[v_i])
        );
    end loop;

    perform tests.authenticate_as_anon();
    return next extensions.throws_ok(
        format('select count(*) from %s', p_relation), '42501', null,
        format('%s: anon gets permission denied', p_relation)
    );
    perform tests.clear_authentication();
end
$$;

-- Columns no signed-in user may select, whatever their role or practice.
create function tests.check_columns_denied(
    p_relation regclass, p_columns text[], p_readers uuid[], p_reader_names text[]
)
returns setof text
language plpgsql
-- pgTAP resolves its own helpers through the search path
set search_path = extensions
as $$
declare
    v_column text;
    v_i integer;
begin
    foreach v_column in array p_columns loop
        for v_i in 1 .. pg_catalog.cardinality(p_readers) loop
            perform tests.authenticate_as(p_readers[v_i]);
            return next extensions.throws_ok(
                format('select %I from %s', v_column, p_relation), '42501', null,
                format('%s: %s selecting %s gets permission denied', p_relation, p_reader_names[v_i], v_column)
            );
            perform tests.clear_authentication();
        end loop;
    end loop;
end
$$;

-- Every view of api is in the matrix (a new view must be added to the list below).
select set_eq(
    $$ select c.oid::regclass::text from pg_catalog.pg_class as c where c.relnamespace = 'api'::regnamespace $$,
    array[
        'api.practices', 'api.practice_members', 'api.categories', 'api.merchant_accounts', 'api.patients',
        'api.products', 'api.payments', 'api.invoices', 'api.invoice_lines', 'api.memberships',
        'api.membership_events', 'api.category_rules', 'api.product_category_changes', 'api.referral_sources',
        'api.workflow_audit', 'api.products_admin', 'api.webhook_events', 'api.webhook_event_replays',
        'api.sync_runs', 'api.user_preferences', 'api.sync_requests', 'api.contracts', 'api.contract_payments', 'api.time_zones'
    ],
    'the matrix covers every relation of api'
);

-- Every table of app a client role may read is in the matrix too.
select set_eq(
    $$
        select c.oid::regclass::text from pg_catalog.pg_class as c
        where c.relnamespace = 'app'::regnamespace and c.relkind in ('r', 'p')
            and (
                has_table_privilege('authenticated', c.oid, 'select')
                or has_any_column_privilege('authenticated', c.oid, 'select')
            )
    $$,
    array[
        'app.practices', 'app.practice_members', 'app.categories', 'app.merchant_accounts', 'app.patients',
        'app.products', 'app.payments', 'app.invoices', 'app.invoice_lines', 'app.payment_invoices',
        'app.contracts', 'app.memberships', 'app.membership_events', 'app.category_rules',
        'app.default_category_rules', 'app.product_category_changes', 'app.referral_sources', 'app.workflow_audit',
        'app.sync_runs', 'app.contract_payments', 'app.webhook_events', 'app.event_replays',
        'app.membership_counts', 'app.user_preferences', 'app.sync_requests'
    ],
    'the matrix covers every table of app that authenticated may read'
);

select
    tests.check_isolation(
        r.relation::regclass, r.practice_column,
        :'practice_a', :'practice_b',
        array[:'owner_a', :'admin_a', :'staff_a']::uuid[], array['owner', 'admin', 'staff'],
        :'staff_b', :'nobody'
    )
from (
    values
    ('api.practices', 'id'),
    ('api.practice_members', 'practice_id'),
    ('api.categories', 'practice_id'),
    ('api.merchant_accounts', 'practice_id'),
    ('api.patients', 'practice_id'),
    ('api.products', 'practice_id'),
    ('api.payments', 'practice_id'),
    ('api.invoices', 'practice_id'),
    ('api.invoice_lines', 'practice_id'),
    ('api.memberships', 'practice_id'),
    ('api.membership_events', 'practice_id'),
    ('api.contracts', 'practice_id'),
    ('api.contract_payments', 'practice_id'),
    ('app.practices', 'id'),
    ('app.practice_members', 'practice_id'),
    ('app.categories', 'practice_id'),
    ('app.merchant_accounts', 'practice_id'),
    ('app.patients', 'practice_id'),
    ('app.products', 'practice_id'),
    ('app.payments', 'practice_id'),
    ('app.invoices', 'practice_id'),
    ('app.invoice_lines', 'practice_id'),
    ('app.payment_invoices', 'practice_id'),
    ('app.contracts', 'practice_id'),
    ('app.memberships', 'practice_id'),
    ('app.membership_events', 'practice_id'),
    -- memberships, operations and sync work: any member reads their practice's rows
    ('api.category_rules', 'practice_id'),
    ('api.product_category_changes', 'practice_id'),
    ('api.referral_sources', 'practice_id'),
    ('api.workflow_audit', 'practice_id'),
    ('app.category_rules', 'practice_id'),
    ('app.product_category_changes', 'practice_id'),
    ('app.referral_sources', 'practice_id'),
    ('app.workflow_audit', 'practice_id'),
    ('app.contract_payments', 'practice_id'),
    -- the dashboard tab counters
    ('app.membership_counts', 'practice_id')
) as r (relation, practice_column);

-- Owners and admins only: the product admin screen, the event explorer, the operations screen.
select
    tests.check_admin_isolation(
        r.relation::regclass, r.source::regclass, 'practice_id',
        :'practice_a', :'practice_b',
        array[:'owner_a', :'admin_a']::uuid[], array['owner', 'admin'],
        :'staff_a', :'owner_b', :'staff_b', :'nobody'
    )
from (
    values
    ('api.products_admin', 'app.products'),
    ('api.webhook_events', 'app.webhook_events'),
    ('api.webhook_event_replays', 'app.event_replays'),
    ('api.sync_runs', 'app.sync_runs'),
    ('app.sync_runs', 'app.sync_runs'),
    ('app.webhook_events', 'app.webhook_events'),
    ('app.event_replays', 'app.event_replays'),
    ('api.sync_requests', 'app.sync_requests'),
    ('app.sync_requests', 'app.sync_requests')
) as r (relation, source);

-- Shipped keyword rules: no practice_id, the same for every signed-in user.
select
    tests.check_shared(
        'app.default_category_rules',
        array[:'owner_a', :'admin_a', :'staff_a', :'owner_b', :'staff_b', :'nobody']::uuid[],
        array['owner of A', 'admin of A', 'staff of A', 'owner of B', 'staff of B', 'a user of no practice']
    );
-- The time zones a practice may choose: Postgres's list, the same for every signed-in user.
select
    tests.check_shared(
        'api.time_zones',
        array[:'owner_a', :'admin_a', :'staff_a', :'owner_b', :'staff_b', :'nobody']::uuid[],
        array['owner of A', 'admin of A', 'staff of A', 'owner of B', 'staff of B', 'a user of no practice']
    );
select tests.authenticate_as(:'owner_a');
select throws_ok(
    $$ insert into app.default_category_rules (keyword, category_name) values ('planted', 'TRT') $$,
    '42501', null,
    'owner of A cannot add a shipped keyword rule'
);
select tests.clear_authentication();

-- app.webhook_events: owners and admins read their practice's events (matrix above) through
-- column grants that leave out payload and raw_body; payload_masked is what they get.
select count(*) as events_a from app.webhook_events where practice_id = :'practice_a' \gset
select tests.authenticate_as(:'owner_a');
select results_eq(
    $$
        select count(*), count(*) filter (where e.payload_masked is not null)
        from (
            select
                id, received_at, practice_id, merchant_account_id, mx_merchant_id, event_type, payment_id,
                origin, status, reject_reason, attempts, last_error, processed_at, duplicate_count,
                last_duplicate_at, payload_masked
            from app.webhook_events
        ) as e
    $$,
    format($$ values (%s::bigint, %1$s::bigint) $$, :'events_a'),
    'owner of A selects every permitted column of A''s events in app.webhook_events'
);
select tests.clear_authentication();
select
    tests.check_columns_denied(
        'app.webhook_events', array['payload', 'raw_body'],
        array[:'owner_a', :'admin_a', :'staff_a', :'owner_b', :'staff_b', :'nobody']::uuid[],
        array['owner of A', 'admin of A', 'staff of A', 'owner of B', 'staff of B', 'a user of no practice']
    );

-- app.contracts: members read their practice's contracts without the raw MX JSON.
select
    tests.check_columns_denied(
        'app.contracts', array['raw'],
        array[:'owner_a', :'admin_a', :'staff_a', :'owner_b', :'staff_b', :'nobody']::uuid[],
        array['owner of A', 'admin of A', 'staff of A', 'owner of B', 'staff of B', 'a user of no practice']
    );

-- Tables no client may read at all.
select tests.authenticate_as(:'owner_a');
select throws_ok(
    $$ select count(*) from app.webhook_tokens $$, '42501', null,
    'owner of A reading app.webhook_tokens gets permission denied'
);
select throws_ok(
    $$ select count(*) from app.alert_log $$, '42501', null,
    'owner of A reading app.alert_log gets permission denied'
);
select throws_ok(
    $$ select count(*) from app.legacy_workflow_pending $$, '42501', null,
    'owner of A reading app.legacy_workflow_pending gets permission denied'
);

-- ---------------------------------------------------------------------------
-- Writes: practice settings and categories
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'staff_a');
select is_empty(
    format($$ update app.practices set name = 'Renamed by staff' where id = %L returning id $$, :'practice_a'),
    'staff of A cannot update practice A (no row is updated)'
);
select throws_ok(
    format($$ insert into app.categories (practice_id, name) values (%L, 'Staff programme') $$, :'practice_a'),
    '42501', null,
    'staff of A cannot insert a category into A'
);
select is_empty(
    format($$ update app.categories set name = 'Renamed' where practice_id = %L returning id $$, :'practice_a'),
    'staff of A cannot rename a category of A'
);
select tests.clear_authentication();
select is(
    (select name from app.practices where id = :'practice_a'),
    'Clinic A',
    'practice A kept its name after the staff attempt'
);

select tests.authenticate_as(:'admin_a');
select results_eq(
    format($$ update app.practices set name = 'Clinic A (admin)' where id = %L returning name $$, :'practice_a'),
    array['Clinic A (admin)'],
    'admin of A can update practice A'
);
select results_eq(
    format($$ insert into app.categories (practice_id, name) values (%L, 'Hair') returning name $$, :'practice_a'),
    array['Hair'],
    'admin of A can insert a category into A'
);
select is_empty(
    format(
        $$ update app.categories set name = 'Misc' where practice_id = %L and kind = 'uncategorized' returning id $$,
        :'practice_a'
    ),
    'admin of A cannot rename the Uncategorized bucket'
);
select throws_ok(
    format(
        $$ insert into app.categories (practice_id, name, kind) values (%L, 'Second bucket', 'uncategorized') $$,
        :'practice_a'
    ),
    '42501', null,
    'admin of A cannot choose a category''s kind'
);
select is_empty(
    format($$ update app.practices set name = 'Taken over' where id = %L returning id $$, :'practice_b'),
    'admin of A cannot update practice B'
);

select tests.authenticate_as(:'owner_a');
select results_eq(
    format(
        $$ update app.practices set past_due_grace_days = 14 where id = %L returning past_due_grace_days $$,
        :'practice_a'
    ),
    array[14],
    'owner of A can update practice A'
);
select results_eq(
    format($$ insert into app.categories (practice_id, name) values (%L, 'Skin') returning name $$, :'practice_a'),
    array['Skin'],
    'owner of A can insert a category into A'
);
select is_empty(
    format($$ update app.practices set name = 'Taken over' where id = %L returning id $$, :'practice_b'),
    'owner of A cannot update practice B'
);
select throws_ok(
    format($$ insert into app.categories (practice_id, name) values (%L, 'Planted') $$, :'practice_b'),
    '42501', null,
    'owner of A cannot insert a category into B'
);
select is_empty(
    format($$ update app.categories set name = 'Hijacked' where practice_id = %L returning id $$, :'practice_b'),
    'owner of A cannot rename a category of B'
);
select throws_ok(
    format($$ update app.practices set slug = 'other-slug' where id = %L $$, :'practice_a'),
    '42501', null,
    'owner of A cannot change the practice''s slug (column not granted)'
);
select throws_ok(
    format($$ delete from app.practices where id = %L $$, :'practice_a'),
    '42501', null,
    'owner of A cannot delete the practice'
);
select throws_ok(
    format(
        $$ insert into app.practice_members (practice_id, user_id, role) values (%L, %L, 'owner') $$,
        :'practice_b', :'owner_a'
    ),
    '42501', null,
    'owner of A cannot make themself a member of B'
);
select throws_ok(
    format($$ update app.practice_members set role = 'owner' where user_id = %L $$, :'staff_a'),
    '42501', null,
    'owner of A cannot change roles directly'
);

-- Only the worker's procedures write MX data.
select throws_ok(
    format(
        $$ insert into app.payments (id, practice_id, merchant_account_id, status, type, amount, mx_created_at,
            raw, fetched_at, source_event_id)
        values (99001, %L, %L, 'Approved', 'Sale', 1, now(), '{}', now(), 1) $$,
        :'practice_a', :'account_a'
    ),
    '42501', null,
    'authenticated cannot insert a payment'
);
select throws_ok(
    $$ update app.payments set amount = 0 where id = 11001 $$, '42501', null,
    'authenticated cannot update a payment'
);
select throws_ok(
    $$ delete from app.payments where id = 11001 $$, '42501', null,
    'authenticated cannot delete a payment'
);
select throws_ok(
    format(
        $$ insert into app.invoices (id, practice_id, merchant_account_id, raw, fetched_at, source_event_id)
        values (99002, %L, %L, '{}', now(), 1) $$,
        :'practice_a', :'account_a'
    ),
    '42501', null,
    'authenticated cannot insert an invoice'
);
select throws_ok(
    $$ update app.invoices set total_amount = 0 where id = 21001 $$, '42501', null,
    'authenticated cannot update an invoice''s MX fields'
);
select throws_ok(
    $$ delete from app.invoices where id = 21001 $$, '42501', null,
    'authenticated cannot delete an invoice'
);
select throws_ok(
    format(
        $$ insert into app.memberships (practice_id, patient_id, category_id, status, status_source)
        select practice_id, patient_id, category_id, 'active', 'staff' from app.memberships
        where practice_id = %L limit 1 $$,
        :'practice_a'
    ),
    '42501', null,
    'authenticated cannot insert a membership'
);
select throws_ok(
    $$ update app.memberships set status = 'canceled' $$, '42501', null,
    'authenticated cannot update a membership''s status directly'
);
select throws_ok(
    $$ delete from app.memberships $$, '42501', null,
    'authenticated cannot delete a membership'
);
select throws_ok(
    format($$ insert into app.patients (practice_id, name) values (%L, 'Mallory') $$, :'practice_a'),
    '42501', null,
    'authenticated cannot insert a patient'
);
select throws_ok(
    $$ update app.patients set name = 'Renamed' $$, '42501', null,
    'authenticated cannot update a patient'
);
select throws_ok(
    $$ delete from app.patients $$, '42501', null,
    'authenticated cannot delete a patient'
);

select tests.clear_authentication();
select is(
    (select name from app.practices where id = :'practice_b'),
    'Clinic B',
    'practice B is untouched after every attempt from A'
);
select is(
    (select count(*) from app.categories where practice_id = :'practice_b'),
    6::bigint,
    'practice B still has exactly its six default categories'
);

select * from finish();
rollback;
