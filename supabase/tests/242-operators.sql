-- The operator view's api (20261201140200): operators (app.operators) see every practice and
-- merchant account's health; practice staff, even owners, and anon get nothing.
begin;
\ir _helpers.psql

select plan(17);

select tests.create_practice('Clinic O', 'clinic-o') as practice \gset
select tests.create_practice('Clinic Q', 'clinic-q') as other \gset
select tests.create_user('owner-o@example.test') as owner \gset
select tests.create_user('viewer-o@example.test') as viewer \gset
select tests.create_user('operator@example.test') as operator \gset
select tests.create_user('unconfirmed-op@example.test') as unconfirmed \gset
update auth.users set email_confirmed_at = now() where id = :'operator';
select tests.add_member(:'practice', :'owner', 'owner');
select tests.add_member(:'practice', :'viewer', 'viewer');
select tests.create_merchant_account(:'practice', 5005) as account \gset
select tests.create_merchant_account(:'other', 5006);
select tests.map_product(:'practice', 'Testosterone', 'TRT');
select tests.process_payment(
    5005, tests.payment_json(15001, 5005, '2026-01-05 15:00+00', p_customer_name => 'Oscar Op'),
    tests.invoice_json(25001, 901, 'Oscar Op', array['Testosterone'])
);
select tests.receive_payment_event(5005, 15002) as queued_event \gset
update app.merchant_accounts set credentials_failed_at = '2026-11-30 08:00+00', credentials_error = 'HTTP 401'
where id = :'account';

-- the operator command
select is(private.add_operator('Operator@Example.test'), 'added', 'operator add: by e-mail, any case');
select is(private.add_operator('operator@example.test'), 'unchanged', 'again: unchanged');
select throws_ok($$select private.add_operator('nobody-here@example.test')$$, 'P0002', null,
    'operator add: an unknown address is refused');
select throws_ok($$select private.add_operator('unconfirmed-op@example.test')$$, '42501', null,
    'operator add: an unconfirmed account is refused');
select is(array(select email from private.operator_list()), array['operator@example.test'], 'operator list');

-- who sees what
select tests.authenticate_as(:'operator');
select is(api.is_operator(), true, 'the operator is one');
select api.operator_overview() as overview \gset
select is(
    array(select p ->> 'slug' from jsonb_array_elements(:'overview'::jsonb -> 'practices') as p
        where p ->> 'slug' in ('clinic-o', 'clinic-q')),
    array['clinic-o', 'clinic-q'], 'every practice, without being a member of any'
);
select is(
    (select row(a ->> 'credentials_failed_at', a ->> 'queued_events', a ->> 'dead_events')::text
        from jsonb_array_elements(:'overview'::jsonb -> 'merchant_accounts') as a where (a ->> 'mx_merchant_id') = '5005'),
    row(to_jsonb('2026-11-30 08:00+00'::timestamptz) ->> 0, '1', '0')::text,
    'each merchant account: failing credentials since, queued and dead events'
);
select ok(
    (select (m ->> 'last_event_at') is not null from jsonb_array_elements(:'overview'::jsonb -> 'merchants') as m
        where (m ->> 'mx_merchant_id') = '5005'),
    'the facts of worker status: last event per merchant'
);
select ok(
    (:'overview'::jsonb -> 'ingest' ? 'depth') and (:'overview'::jsonb -> 'dead_letters' ? 'oldest_age_seconds'),
    'queue depth and age, dead letters'
);
select is(
    (select count(*) from api.memberships), 0::bigint, 'an operator reads no practice''s data through api'
);
select tests.clear_authentication();

select tests.authenticate_as(:'owner');
select isnt_empty(
    'select * from api.memberships', 'the practice has memberships (so the operator reading none above means something)'
);
select is(api.is_operator(), false, 'a practice owner is not an operator');
select throws_ok('select api.operator_overview()', '42501', 'only operators may see the operator view',
    'a practice owner gets nothing');
select tests.clear_authentication();
select tests.authenticate_as(:'viewer');
select throws_ok('select api.operator_overview()', '42501', null, 'a viewer gets nothing');
select tests.clear_authentication();
select tests.authenticate_as_anon();
select throws_ok('select api.operator_overview()', '42501', null, 'anon gets nothing');
select tests.clear_authentication();

select is(private.remove_operator('operator@example.test'), true, 'operator remove');
select * from finish();
rollback;
