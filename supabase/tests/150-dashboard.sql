-- The dashboard's additions: the "last paid between" filter (whole days in the practice's time
-- zone) in the list and the CSV export, per-user column preferences, the change notification
-- triggers, and the local platform layer's Auth functions (bcrypt passwords, rotating refresh
-- tokens with reuse detection, real sign-out, one-time links) and who may call them.
begin;
\ir _helpers.psql

select plan(28);

select tests.create_practice('Clinic P', 'clinic-p') as practice \gset
select tests.create_user('owner-p@example.test') as owner \gset
select tests.create_user('staff-p@example.test') as staff \gset
select tests.add_member(:'practice', :'owner', 'owner');
select tests.add_member(:'practice', :'staff', 'staff');
update app.practices set timezone = 'America/Chicago' where id = :'practice';
select tests.create_merchant_account(:'practice', 3003) as account \gset
select tests.map_product(:'practice', 'Testosterone', 'TRT');

-- Early paid 2026-01-05 09:00 Chicago; Late paid 2026-01-06 03:00 UTC = 2026-01-05 21:00 Chicago;
-- Next paid 2026-01-06 15:00 Chicago.
select tests.process_payment(
    3003, tests.payment_json(13001, 3003, '2026-01-05 15:00+00', p_customer_name => 'Early E'),
    tests.invoice_json(23001, 701, 'Early E', array['Testosterone'])
);
select tests.process_payment(
    3003, tests.payment_json(13002, 3003, '2026-01-06 03:00+00', p_customer_name => 'Late L'),
    tests.invoice_json(23002, 702, 'Late L', array['Testosterone'])
);
select tests.process_payment(
    3003, tests.payment_json(13003, 3003, '2026-01-06 21:00+00', p_customer_name => 'Next N'),
    tests.invoice_json(23003, 703, 'Next N', array['Testosterone'])
);

select tests.authenticate_as(:'staff');
select is(
    array(
        select l.patient_name from api.list_memberships(
            :'practice', p_last_paid_from => '2026-01-05', p_last_paid_to => '2026-01-05'
        ) as l order by 1
    ),
    array['Early E', 'Late L'],
    'last paid between: whole days in the practice''s time zone (21:00 Chicago is still the 5th)'
);
select is(
    array(
        select l.patient_name from api.list_memberships(:'practice', p_last_paid_from => '2026-01-06') as l
    ),
    array['Next N'],
    'last paid from alone'
);
select is(
    (select count(*) from api.list_memberships(:'practice', p_last_paid_to => '2026-01-04')),
    0::bigint,
    'last paid to alone: nothing before the first payment'
);
select is(
    (select count(*) from api.list_memberships(:'practice')),
    3::bigint,
    'without the new parameters the list means what it meant'
);
select is(
    array_length(
        string_to_array(
            rtrim(api.export_memberships_csv(:'practice', p_last_paid_from => '2026-01-06'), e'\r\n'),
            e'\r\n'
        ),
        1
    ),
    2,
    'the CSV export takes the same filter (header and one row)'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- Column preferences: each user their own
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'staff');
select is(
    api.set_membership_columns(array['status', 'notes', 'status']),
    array['patient', 'status', 'notes'],
    'columns kept in order, patient first, duplicates dropped'
);
select throws_ok(
    $$ select api.set_membership_columns(array['ssn']) $$, '22023', null,
    'an unknown column is refused'
);
select is(
    (select membership_columns from api.user_preferences),
    array['patient', 'status', 'notes'],
    'the user reads their own choice'
);
select tests.clear_authentication();
select tests.authenticate_as(:'owner');
select is((select count(*) from api.user_preferences), 0::bigint, 'another user sees none of it');
select is(
    api.set_membership_columns(array['programme']),
    array['patient', 'programme'],
    'and keeps their own'
);
select is(
    (select count(*) from app.user_preferences),
    1::bigint,
    'the table under RLS shows only the own row'
);
select tests.clear_authentication();
select tests.authenticate_as_anon();
select throws_ok($$ select * from api.user_preferences $$, '42501', null, 'anon gets permission denied');
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- Change notifications: statement triggers on memberships, ids only
-- ---------------------------------------------------------------------------
select set_eq(
    $$
        select t.tgname::text from pg_catalog.pg_trigger as t
        where t.tgrelid = 'app.memberships'::regclass and t.tgname like 'memberships_notify_%'
    $$,
    array['memberships_notify_insert', 'memberships_notify_update', 'memberships_notify_delete'],
    'insert, update and delete are announced'
);
select tests.authenticate_as(:'staff');
select lives_ok(
    format(
        $$ select api.update_membership_workflow(%L, '{"notes": "called"}') $$,
        (select min(m.id::text) from app.memberships as m where m.practice_id = :'practice')
    ),
    'a staff edit fires the trigger without any privilege beyond the edit'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- Local Auth (platform layer)
-- ---------------------------------------------------------------------------
select auth.local_set_password(:'staff', 'right password');
select is(
    (select count(*) from auth.local_sign_in('STAFF-P@example.test ', 'right password', 600)),
    1::bigint,
    'sign-in with the bcrypt password (e-mail case and spaces ignored)'
);
select is(
    (select count(*) from auth.local_sign_in('staff-p@example.test', 'wrong password', 600)),
    0::bigint,
    'a wrong password signs nobody in'
);
select matches(
    (select u.encrypted_password from auth.users as u where u.id = :'staff'),
    '^\$2a\$',
    'passwords are bcrypt hashes as Supabase Auth stores them'
);
create temporary table session_1 as
select * from auth.local_sign_in('staff-p@example.test', 'right password', 600);
create temporary table session_1b as
select * from auth.local_refresh((select s.refresh_token from session_1 as s), 600);
select is(
    (select s.session_id from session_1b as s),
    (select s.session_id from session_1 as s),
    'a refresh stays in the session'
);
select isnt(
    (select s.refresh_token from session_1b as s),
    (select s.refresh_token from session_1 as s),
    'and rotates the refresh token'
);
select is(
    (select count(*) from auth.local_refresh((select s.refresh_token from session_1 as s), 600)),
    1::bigint,
    'within the reuse interval the old token still works (parallel requests)'
);
update auth.local_refresh_tokens set revoked_at = now() - interval '1 minute' where revoked;
select is(
    (select count(*) from auth.local_refresh((select s.refresh_token from session_1 as s), 600)),
    0::bigint,
    'after it, reuse of a rotated token is refused'
);
select is(
    (select count(*) from auth.local_refresh((select s.refresh_token from session_1b as s), 600)),
    0::bigint,
    'and ends the whole session (its newest token too)'
);
create temporary table session_2 as
select * from auth.local_sign_in('staff-p@example.test', 'right password', 600);
select auth.local_sign_out((select s.refresh_token from session_2 as s));
select is(
    (select count(*) from auth.local_refresh((select s.refresh_token from session_2 as s), 600)),
    0::bigint,
    'sign-out is real: the refresh token is dead at once'
);
select throws_ok(
    format(
        $$ select * from auth.local_verify_one_time_token(%L, 'short', 600) $$,
        auth.local_new_one_time_token(:'owner', 'invite', 600)
    ),
    '22023', null,
    'an invitation refuses a password under 8 characters'
);
create temporary table invite as select auth.local_new_one_time_token(:'owner', 'invite', 600) as token;
select is(
    (select count(*) from auth.local_verify_one_time_token((select i.token from invite as i), 'owner password', 600)),
    1::bigint,
    'an invitation sets the password and opens a session'
);
select is(
    (select count(*) from auth.local_verify_one_time_token((select i.token from invite as i), 'owner password', 600)),
    0::bigint,
    'once'
);
select is(
    (select count(*) from auth.local_sign_in('owner-p@example.test', 'owner password', 600)),
    1::bigint,
    'the invited user signs in with the new password'
);
select ok(
    not has_function_privilege('authenticated', 'auth.local_sign_in(text, text, integer)', 'execute')
    and not has_function_privilege('anon', 'auth.local_refresh(text, integer)', 'execute')
    and not has_function_privilege('authenticated', 'auth.local_set_password(uuid, text)', 'execute'),
    'no client role may call the local Auth functions'
);

select * from finish();
rollback;
