-- started_on is the practice's local date (20261201150000): a payment at 01:00 UTC is the
-- evening before in America/Chicago, and the membership started that evening's date; the
-- "started between" filter and the CSV export agree with it, and with "last paid between"
-- (whole local days) for the same day.
begin;
\ir _helpers.psql

select plan(8);

select tests.create_practice('Clinic C', 'clinic-c') as pc \gset
update app.practices set timezone = 'America/Chicago' where id = :'pc';
select tests.create_user('staff-c@example.test') as staff_c \gset
select tests.add_member(:'pc', :'staff_c', 'staff');
select tests.create_merchant_account(:'pc', 2501) as account_c \gset
select tests.map_product(:'pc', 'Testosterone', 'TRT');

select tests.create_practice('Clinic U', 'clinic-u') as pu \gset
select tests.create_merchant_account(:'pu', 2502) as account_u \gset
select tests.map_product(:'pu', 'Testosterone', 'TRT');

-- Night N: recurring, 2026-01-06 01:00 UTC = 2026-01-05 19:00 Chicago.
-- Day D: recurring, 2026-01-06 15:00 UTC = 2026-01-06 09:00 Chicago.
-- Once O: a one-time Terminal sale at 2026-01-06 01:00 UTC (its started_on: the purchase day).
-- Utc U: recurring at 2026-01-06 01:00 UTC in a practice whose zone is UTC.
select tests.process_payment(
    2501, tests.payment_json(25001, 2501, '2026-01-06 01:00+00', p_customer_name => 'Night N'),
    tests.invoice_json(25101, 951, 'Night N', array['Testosterone'])
);
select tests.process_payment(
    2501, tests.payment_json(25002, 2501, '2026-01-06 15:00+00', p_customer_name => 'Day D'),
    tests.invoice_json(25102, 952, 'Day D', array['Testosterone'])
);
select tests.process_payment(
    2501,
    tests.payment_json(25003, 2501, '2026-01-06 01:00+00', p_source => 'Terminal', p_customer_name => 'Once O'),
    tests.invoice_json(25103, 953, 'Once O', array['Testosterone'])
);
select tests.process_payment(
    2502, tests.payment_json(25004, 2502, '2026-01-06 01:00+00', p_customer_name => 'Utc U'),
    tests.invoice_json(25104, 954, 'Utc U', array['Testosterone'])
);

create function tests.started_on_of(p_name text)
returns date
language sql
stable
set search_path = ''
as $$
    select m.started_on from app.memberships as m inner join app.patients as p on m.patient_id = p.id
    where p.name = p_name
$$;

select is(
    tests.started_on_of('Night N'), '2026-01-05'::date,
    'a recurring payment at 01:00 UTC started the membership on the evening''s date in Chicago'
);
select is(tests.started_on_of('Day D'), '2026-01-06'::date, 'a payment at 09:00 Chicago: that day');
select is(
    tests.started_on_of('Once O'), '2026-01-05'::date, 'a one-time purchase: its local purchase day too'
);
select is(
    tests.started_on_of('Utc U'), '2026-01-06'::date, 'in a practice on UTC the date is the UTC one'
);

-- a row stored with the UTC date (as before the migration) is corrected by a rebuild
update app.memberships as m set started_on = '2026-01-06'
from app.patients as p where m.patient_id = p.id and p.name = 'Night N';
select private.refresh_membership_from_payments(m.practice_id, m.patient_id, m.category_id)
from app.memberships as m inner join app.patients as p on m.patient_id = p.id
where p.name = 'Night N';
select is(tests.started_on_of('Night N'), '2026-01-05'::date, 'a rebuild corrects a stored UTC date');

select tests.authenticate_as(:'staff_c');
select is(
    array(
        select l.patient_name
        from api.list_memberships(:'pc', p_started_from => '2026-01-05', p_started_to => '2026-01-05') as l
    ),
    array['Night N'],
    'started between the 5th and the 5th: the member first paid on the 5th, Chicago time'
);
select is(
    array(
        select l.patient_name
        from api.list_memberships(:'pc', p_last_paid_from => '2026-01-05', p_last_paid_to => '2026-01-05') as l
    ),
    array['Night N'],
    'last paid between the same days agrees'
);
select ok(
    strpos(
        api.export_memberships_csv(:'pc', p_started_from => '2026-01-05', p_started_to => '2026-01-05'),
        'Night N,TRT,active,2026-01-05,'
    ) > 0,
    'the CSV export has the local start date'
);

select * from finish();
rollback;
