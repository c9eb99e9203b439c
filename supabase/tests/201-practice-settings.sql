-- api.update_practice_settings and api.time_zones: owners and admins change their practice's
-- settings; staff, another practice and anon cannot; every bad value is refused with a
-- message naming it and changes nothing (not even the good fields sent with it).
begin;
\ir _helpers.psql

select plan(25);

select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_user('owner-a@example.test') as owner_a \gset
select tests.create_user('admin-a@example.test') as admin_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('owner-b@example.test') as owner_b \gset
select tests.add_member(:'practice_a', :'owner_a', 'owner');
select tests.add_member(:'practice_a', :'admin_a', 'admin');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'owner_b', 'owner');

create function tests.settings_of(p_practice_id uuid)
returns jsonb
language sql
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'name', p.name, 'timezone', p.timezone, 'past_due_grace_days', p.past_due_grace_days,
        'lapse_days', p.lapse_days, 'auto_apply_suggestions', p.auto_apply_suggestions,
        'count_repeat_purchases', p.count_repeat_purchases, 'default_billing_interval', p.default_billing_interval
    )
    from app.practices as p where p.id = p_practice_id
$$;
grant execute on function tests.settings_of(uuid) to authenticated;

-- the owner changes everything at once
select tests.authenticate_as(:'owner_a');
select is(
    api.update_practice_settings(:'practice_a', '{
        "name": "  Clinic A North ", "timezone": "America/Chicago", "past_due_grace_days": 5,
        "lapse_days": 45, "auto_apply_suggestions": true, "count_repeat_purchases": true,
        "default_billing_interval": "quarterly"
    }') - 'id',
    '{"name": "Clinic A North", "timezone": "America/Chicago", "past_due_grace_days": 5, "lapse_days": 45,
      "auto_apply_suggestions": true, "count_repeat_purchases": true, "default_billing_interval": "quarterly"}'::jsonb,
    'the owner changes every setting; the name is trimmed'
);
select tests.clear_authentication();
select is(
    tests.settings_of(:'practice_a') ->> 'lapse_days', '45', 'the change is stored'
);

-- the admin changes one field; the others stay
select tests.authenticate_as(:'admin_a');
select is(
    api.update_practice_settings(:'practice_a', '{"past_due_grace_days": 0}') ->> 'past_due_grace_days', '0',
    'an admin changes one setting (0 days of grace is allowed)'
);
select is(
    (select timezone from api.practices where id = :'practice_a'), 'America/Chicago',
    'the settings not sent stay as they were'
);
select is(
    api.update_practice_settings(:'practice_a', '{}') ->> 'name', 'Clinic A North', 'no change: the settings back'
);

-- bad input: refused, named, nothing changed
select tests.settings_of(:'practice_a') as before \gset
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"timezone": "Mars/Olympus"}') $$, :'practice_a'),
    '22023', 'unknown time zone "Mars/Olympus" (use an IANA name such as America/Chicago)',
    'an unknown time zone is refused by name'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"name": "Fine", "lapse_days": 0}') $$, :'practice_a'),
    '22023', 'the lapse period must be a whole number of days from 1 to 365',
    'a lapse of 0 days is refused'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"past_due_grace_days": 91}') $$, :'practice_a'),
    '22023', 'the grace period must be a whole number of days from 0 to 90', 'a grace of 91 days is refused'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"past_due_grace_days": 2.5}') $$, :'practice_a'),
    '22023', 'the grace period must be a whole number of days from 0 to 90', 'a fraction of a day is refused'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"lapse_days": "30"}') $$, :'practice_a'),
    '22023', 'the lapse period must be a whole number of days from 1 to 365', 'a string is not a number'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"name": "   "}') $$, :'practice_a'),
    '22023', 'the name is required', 'a blank name is refused'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"auto_apply_suggestions": "yes"}') $$, :'practice_a'),
    '22023', 'auto_apply_suggestions must be true or false', 'a boolean must be a boolean'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"default_billing_interval": "fortnightly"}') $$, :'practice_a'),
    '22023', null, 'an unknown billing interval is refused'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"slug": "mine", "owner": "me"}') $$, :'practice_a'),
    '22023', 'unknown settings: owner, slug', 'unknown settings are named and refused'
);
select throws_ok(
    format($$ select api.update_practice_settings(%L, '[1]') $$, :'practice_a'),
    '22023', 'changes must be a JSON object', 'changes must be an object'
);
select throws_ok(
    format(
        $$ select api.update_practice_settings(%L, '{"lapse_days": 0, "timezone": "Nowhere", "name": "x"}') $$,
        :'practice_a'
    ),
    '22023',
    'the lapse period must be a whole number of days from 1 to 365; '
    || 'unknown time zone "Nowhere" (use an IANA name such as America/Chicago)',
    'every reason at once'
);
select tests.clear_authentication();
select is(tests.settings_of(:'practice_a'), :'before'::jsonb, 'nothing changed by any refused call');

-- staff, another practice, anon
select tests.authenticate_as(:'staff_a');
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"lapse_days": 10}') $$, :'practice_a'),
    '42501', 'only an owner or admin of the practice may change its settings', 'staff may not change settings'
);
select is(
    (select lapse_days from api.practices where id = :'practice_a'), 45, 'staff still read the settings'
);
select tests.authenticate_as(:'owner_b');
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"lapse_days": 10}') $$, :'practice_a'),
    'P0002', null, 'an owner of another practice does not find it'
);
select tests.authenticate_as_anon();
select throws_ok(
    format($$ select api.update_practice_settings(%L, '{"lapse_days": 10}') $$, :'practice_a'),
    '42501', null, 'anon may not call it'
);
select throws_ok($$ select count(*) from api.time_zones $$, '42501', null, 'anon may not read the time zones');
select tests.clear_authentication();
select is(tests.settings_of(:'practice_a'), :'before'::jsonb, 'nothing changed by staff, B or anon');

-- the time zones the page offers
select tests.authenticate_as(:'staff_a');
select ok(
    exists (select from api.time_zones where name = 'America/Chicago'), 'the list has America/Chicago'
);
select ok(
    not exists (select from api.time_zones where name like 'posix/%'), 'the list leaves out posix/ aliases'
);
select tests.clear_authentication();

select * from finish();
rollback;
