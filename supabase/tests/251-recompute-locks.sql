-- private.recompute_memberships gives back each patient's advisory lock as it goes
-- (20261201150100): a transaction-level lock per patient, held to the commit, overflows the
-- shared lock table on a practice of tens of thousands of patients.
begin;
\ir _helpers.psql

select plan(3);

select tests.create_practice('Clinic R', 'clinic-r') as pr \gset
select tests.map_product(:'pr', 'Testosterone', 'TRT');
-- memberships written directly (no payment applied here, so no lock of their patients is held
-- yet by this transaction): staff-made members, kept by the recompute
insert into app.patients (practice_id, name)
select
    :'pr'::uuid as practice_id,
    'Patient ' || n as name
from generate_series(0, 4) as n;
insert into app.memberships (practice_id, patient_id, category_id, status, status_source, treated_as_member)
select
    pt.practice_id,
    pt.id as patient_id,
    c.id as category_id,
    'active' as status,
    'staff' as status_source,
    true as treated_as_member
from app.patients as pt
inner join app.categories as c on pt.practice_id = c.practice_id and c.name = 'TRT'
where pt.practice_id = :'pr';

select is(
    (select count(distinct patient_id)::int from app.memberships where practice_id = :'pr'),
    5,
    'five patients, each with a membership'
);

-- the fixtures' own payments took transaction-level locks too: count what is held before
select count(*)::int as locks_before from pg_catalog.pg_locks
where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid() \gset

select is(
    private.recompute_memberships(:'pr') ->> 'memberships', '5',
    'recompute goes through every membership of the practice'
);

select is(
    (select count(*)::int from pg_catalog.pg_locks
     where locktype = 'advisory' and pid = pg_catalog.pg_backend_pid()),
    :locks_before,
    'the recompute leaves no more advisory locks held in the transaction than it found'
);

select * from finish();
rollback;
