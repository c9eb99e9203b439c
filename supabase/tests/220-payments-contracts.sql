-- The payments and contracts pages' api (20261201120000): api.list_payments with each filter
-- and its keyset pages, api.payment_totals for the same filters, api.export_payments_csv
-- (every cell through api.csv_cell), api.contracts (no raw column, MX's statuses as they come)
-- and api.contract_payments; as owner, admin and staff, as another practice's staff, as a user
-- of no practice and as anon; bad input is a clear error.
begin;
\ir _helpers.psql

select plan(52);

select tests.create_practice('Clinic P', 'clinic-p') as practice \gset
select tests.create_practice('Clinic Q', 'clinic-q') as practice_q \gset
select tests.create_user('owner-p@example.test') as owner \gset
select tests.create_user('admin-p@example.test') as admin \gset
select tests.create_user('staff-p@example.test') as staff \gset
select tests.create_user('staff-q@example.test') as staff_q \gset
select tests.create_user('nobody@example.test') as nobody \gset
select tests.add_member(:'practice', :'owner', 'owner');
select tests.add_member(:'practice', :'admin', 'admin');
select tests.add_member(:'practice', :'staff', 'staff');
select tests.add_member(:'practice_q', :'staff_q', 'staff');
update app.practices set timezone = 'America/Chicago' where id = :'practice';
select tests.create_merchant_account(:'practice', 4004) as account \gset
select tests.create_merchant_account(:'practice_q', 5005) as account_q \gset
select tests.map_product(:'practice', 'Testosterone', 'TRT');
select tests.map_product(:'practice', 'Semaglutide', 'Weight Loss');

-- P: a recurring sale, its declined renewal and a refund (Alice); a QuickPay sale at
-- 2026-02-04 03:00 UTC = 2026-02-03 21:00 Chicago (Bob); a patient whose name a spreadsheet
-- would run, without an invoice. Q: one sale.
select tests.process_payment(
    4004, tests.payment_json(14001, 4004, '2026-02-01 15:00+00', p_customer_name => 'Alice Alpha'),
    tests.invoice_json(24001, 801, 'Alice Alpha', array['Testosterone'])
);
select tests.process_payment(
    4004,
    tests.payment_json(14002, 4004, '2026-02-02 15:00+00', 'Declined', 'Sale', 'Recurring', 100.00, 'Alice Alpha'),
    null, now(), 'PaymentFail'
);
select tests.process_payment(
    4004,
    tests.payment_json(14003, 4004, '2026-02-03 15:00+00', 'Approved', 'Return', 'QuickPay', 40.00, 'Alice Alpha')
    || '{"original_id": 14001}'
);
select tests.process_payment(
    4004,
    tests.payment_json(14004, 4004, '2026-02-04 03:00+00', 'Settled', 'Sale', 'QuickPay', 250.50, 'Bob Beta'),
    tests.invoice_json(24004, 804, 'Bob Beta', array['Semaglutide'])
);
select tests.process_payment(
    4004,
    tests.payment_json(
        14005, 4004, '2026-02-05 15:00+00', 'Approved', 'Sale', 'QuickPay', 10.00, '=HYPERLINK("x")'
    )
);
select tests.process_payment(
    5005, tests.payment_json(15001, 5005, '2026-02-01 15:00+00', p_customer_name => 'Quinn Q'),
    tests.invoice_json(25001, 901, 'Quinn Q', array['Testosterone'])
);

-- Contracts as the worker's contract sync stores them (as the database owner): MX's status
-- text as it comes, one MX added after this code was written.
insert into app.contracts (
    id, practice_id, merchant_account_id, patient_id, name, customer_name, billing_interval, every,
    amount, status, next_bill_date, raw, fetched_at
)
values
(
    34001, :'practice', :'account', (select id from app.patients where name = 'Alice Alpha'), 'TRT monthly',
    'Alice Alpha', 'Monthly', '1', 100.00, 'Active', '2026-03-01', '{"secret": "raw"}', now()
),
(34002, :'practice', :'account', null, 'Old plan', 'Bob Beta', 'Weekly', '2', 20.00, 'Suspended', null, '{}', now()),
(35001, :'practice_q', :'account_q', null, 'Q plan', 'Quinn Q', 'Monthly', '1', 999.00, 'Active', null, '{}', now());
insert into app.contract_payments (contract_id, payment_id, practice_id)
values (34001, 14001, :'practice'), (34001, 14002, :'practice'), (35001, 15001, :'practice_q');
update app.memberships set contract_id = 34001
where practice_id = :'practice' and patient_id = (select id from app.patients where name = 'Alice Alpha');
select id as alice_membership from app.memberships
where practice_id = :'practice' and patient_id = (select pt.id from app.patients as pt where pt.name = 'Alice Alpha') \gset
select tests.category_id(:'practice', 'TRT') as trt \gset

-- ---------------------------------------------------------------------------
-- Every member of P reads the same payments, contracts and totals
-- ---------------------------------------------------------------------------
create function tests.payments_seen(p_user uuid, p_practice uuid)
returns bigint[]
language plpgsql
set search_path = ''
as $$
declare
    v_ids bigint[];
begin
    perform tests.authenticate_as(p_user);
    v_ids := array(select l.id from api.list_payments(p_practice) as l);
    perform tests.clear_authentication();
    return v_ids;
end
$$;

select is(tests.payments_seen(:'owner', :'practice'), array[14005, 14004, 14003, 14002, 14001]::bigint[],
    'owner: every payment of the practice, newest first');
select is(tests.payments_seen(:'admin', :'practice'), array[14005, 14004, 14003, 14002, 14001]::bigint[],
    'admin: the same');
select is(tests.payments_seen(:'staff', :'practice'), array[14005, 14004, 14003, 14002, 14001]::bigint[],
    'staff: the same');
select is(tests.payments_seen(:'staff_q', :'practice'), '{}'::bigint[], 'staff of another practice: nothing of P');
select is(tests.payments_seen(:'nobody', :'practice'), '{}'::bigint[], 'a user of no practice: nothing');
select is(tests.payments_seen(:'staff_q', :'practice_q'), array[15001]::bigint[], 'staff of Q: Q''s payment');

select tests.authenticate_as(:'staff');
select is(
    array(select l.kind || ':' || l.id from api.list_payments(:'practice') as l),
    array['sale:14005', 'sale:14004', 'refund:14003', 'decline:14002', 'sale:14001'],
    'kinds: a Return is a refund, a Declined sale a decline'
);
select is(
    (select row(l.patient_name, l.recurring, l.programmes, l.invoice_ids, l.contract_id)::text
     from api.list_payments(:'practice') as l where l.id = 14001),
    row('Alice Alpha', true, array['TRT'], array[24001]::bigint[], 34001::bigint)::text,
    'a row carries its patient, recurring, programmes, invoices and contract'
);
select is(array(select l.id from api.list_payments(:'practice', p_kind => 'refund') as l), array[14003]::bigint[],
    'kind refund');
select is(array(select l.id from api.list_payments(:'practice', p_kind => 'decline') as l), array[14002]::bigint[],
    'kind decline');
select is(array(select l.id from api.list_payments(:'practice', p_status => 'Settled') as l), array[14004]::bigint[],
    'status');
select is(
    array(select l.id from api.list_payments(:'practice', p_source => 'QuickPay') as l),
    array[14005, 14004, 14003]::bigint[],
    'source'
);
select is(array(select l.id from api.list_payments(:'practice', p_category_id => :'trt') as l), array[14001]::bigint[],
    'programme: the payments that paid a line of it');
select is(
    array(select l.id from api.list_payments(:'practice', p_has_invoice => true) as l),
    array[14004, 14001]::bigint[],
    'with an invoice'
);
select is(
    array(select l.id from api.list_payments(:'practice', p_has_invoice => false) as l),
    array[14005, 14003, 14002]::bigint[],
    'without an invoice'
);
select is(
    array(select l.id from api.list_payments(:'practice', p_from => '2026-02-03', p_to => '2026-02-03') as l),
    array[14004, 14003]::bigint[],
    'dates are whole days in the practice''s time zone (03:00 UTC on the 4th is the 3rd in Chicago)'
);
select is(array(select l.id from api.list_payments(:'practice', p_search => '  BOB ') as l), array[14004]::bigint[],
    'patient name search: case and spaces ignored');
select is(array(select l.id from api.list_payments(:'practice', p_search => '%') as l), '{}'::bigint[],
    'a % in the search is a character, not a wildcard');
select is(
    array(select l.id from api.list_payments(:'practice', p_recurring => true) as l),
    array[14002, 14001]::bigint[],
    'recurring only (source Recurring or billed by a contract)'
);

-- keyset pages: two rows, then the next two after the last row's cursor, then the last one
select l.cursor as page1_cursor from api.list_payments(:'practice', p_limit => 2) as l order by l.mx_created_at limit 1 \gset
select is(
    array(select l.id from api.list_payments(:'practice', p_after => :'page1_cursor', p_limit => 2) as l),
    array[14003, 14002]::bigint[],
    'the next page starts after the cursor'
);

select is(
    (select row(t.*)::text from api.payment_totals(:'practice') as t),
    row(5, 3, 360.50, 1, 40.00, 1, 100.00, 320.50)::text,
    'totals: count, sales, refunds, declines and net = sales - refunds'
);
select is(
    (select row(t.*)::text from api.payment_totals(:'practice', p_source => 'QuickPay') as t),
    row(3, 2, 260.50, 1, 40.00, 0, 0.00, 220.50)::text,
    'totals follow the filter'
);

-- CSV: a header, one line per payment, the formula-looking name made inert
select is(
    split_part(api.export_payments_csv(:'practice'), e'\r\n', 1),
    'payment_id,created_at,time_zone,kind,type,status,source,recurring,amount,patient_name,programmes,'
    || 'invoice_number,card_type,card_last4,auth_code,contract_id',
    'CSV header'
);
select is(
    array_length(string_to_array(rtrim(api.export_payments_csv(:'practice'), e'\r\n'), e'\r\n'), 1),
    6,
    'CSV: the header and five payments'
);
select ok(
    api.export_payments_csv(:'practice', p_kind => 'sale') like e'%\r\n14005,2026-02-05 09:00:00,America/Chicago,sale,Sale,Approved,QuickPay,false,10.00,"''=HYPERLINK(""x"")",%',
    'CSV: times in the practice''s zone, a formula-looking name quoted and made inert by api.csv_cell'
);
select is(
    api.export_payments_csv(:'practice', p_kind => 'decline'),
    'payment_id,created_at,time_zone,kind,type,status,source,recurring,amount,patient_name,programmes,'
    || 'invoice_number,card_type,card_last4,auth_code,contract_id' || e'\r\n'
    || '14002,2026-02-02 09:00:00,America/Chicago,decline,Sale,Declined,Recurring,true,100.00,Alice Alpha,,,'
    || 'Visa,4242,,34001' || e'\r\n',
    'CSV of a filter: only its rows'
);

-- the CSV in pages: the header on the first page only, a cursor per payment line
select is(
    array(select left(c.line, 14) from api.payment_csv_lines(:'practice', p_limit => 2) as c),
    array['payment_id,cre', '14005,2026-02-', '14004,2026-02-'],
    'first CSV page: the header, then the lines'
);
select c.cursor as csv_cursor from api.payment_csv_lines(:'practice', p_limit => 2) as c
where c.line like '14004,%' \gset
select is(
    array(select left(c.line, 6) from api.payment_csv_lines(:'practice', p_after => :'csv_cursor', p_limit => 2) as c),
    array['14003,', '14002,'],
    'next CSV page: no header, the lines after the cursor'
);
select is(api.practice_timezone(:'practice'), 'America/Chicago', 'the practice''s time zone for its members');

-- contracts: the practice's, every status as MX wrote it, no raw column, linked memberships
select is(
    array(select c.id || ':' || c.status from api.contracts as c order by c.id),
    array['34001:Active', '34002:Suspended'],
    'staff read their contracts, an unknown MX status as it is'
);
select is(
    (select c.membership_ids from api.contracts as c where c.id = 34001),
    array[:'alice_membership']::uuid[],
    'a contract names the memberships it bills'
);
select is(
    array(select cp.payment_id from api.contract_payments as cp where cp.contract_id = 34001 order by cp.payment_id),
    array[14001, 14002]::bigint[],
    'the contract''s payments'
);
select hasnt_column('api', 'contracts', 'raw', 'api.contracts has no raw column');

-- bad input: a clear error
select throws_ok(
    $$ select * from api.list_payments((select id from app.practices limit 1), p_kind => 'gift') $$,
    '22023', 'p_kind must be sale, refund, decline or other', 'an unknown kind is refused'
);
select throws_ok(
    format($$ select * from api.list_payments(%L, p_from => '2026-02-05', p_to => '2026-02-01') $$, :'practice'),
    '22023', 'p_from must not be after p_to', 'a reversed date range is refused'
);
select throws_ok(
    format($$ select * from api.list_payments(%L, p_after => '{"t": "soon", "id": 1}') $$, :'practice'),
    '22023', 'p_after is not a page cursor', 'a forged cursor is refused'
);
select throws_ok(
    format($$ select * from api.payment_totals(%L, p_search => repeat('x', 101)) $$, :'practice'),
    '22023', 'p_search is at most 100 characters', 'the totals check their input too'
);
select throws_ok(
    format($$ select api.export_payments_csv(%L, p_status => repeat('x', 65)) $$, :'practice'),
    '22023', 'p_status and p_source are at most 64 characters', 'so does the export'
);
select tests.clear_authentication();

-- a voided sale: kind other, listed and counted, in no sum
select tests.process_payment(
    4004,
    tests.payment_json(14006, 4004, '2026-02-06 15:00+00', 'Voided', 'Sale', 'QuickPay', 5.00, 'Bob Beta')
);
select tests.authenticate_as(:'admin');
select is(array(select l.id from api.list_payments(:'practice', p_kind => 'other') as l), array[14006]::bigint[],
    'kind other: a voided sale');
select is(
    (select row(t.*)::text from api.payment_totals(:'practice') as t),
    row(6, 3, 360.50, 1, 40.00, 1, 100.00, 320.50)::text,
    'a voided sale is counted among the payments, in no sum'
);
select tests.clear_authentication();

-- other practice, nobody, anon
select tests.authenticate_as(:'staff_q');
select is(
    (select row(t.*)::text from api.payment_totals(:'practice') as t),
    row(0, 0, 0.00, 0, 0.00, 0, 0.00, 0.00)::text,
    'staff of another practice: P''s totals are zero'
);
select is(
    api.export_payments_csv(:'practice'),
    'payment_id,created_at,time_zone,kind,type,status,source,recurring,amount,patient_name,programmes,'
    || 'invoice_number,card_type,card_last4,auth_code,contract_id' || e'\r\n',
    'staff of another practice: P''s export is the header alone'
);
select is(
    (select count(*) from api.payment_csv_lines(:'practice') as c where c.cursor is not null), 0::bigint,
    'staff of another practice: no CSV line of P'
);
select is(api.practice_timezone(:'practice'), 'UTC', 'staff of another practice: not P''s time zone');
select is(array(select c.id from api.contracts as c), array[35001]::bigint[], 'staff of Q: only Q''s contract');
select is(
    (select count(*) from api.contract_payments as cp where cp.practice_id = :'practice'),
    0::bigint,
    'staff of Q: none of P''s contract payments'
);
select tests.clear_authentication();
select tests.authenticate_as(:'nobody');
select is((select count(*) from api.contracts), 0::bigint, 'a user of no practice: no contracts');
select tests.clear_authentication();

select tests.authenticate_as_anon();
select throws_ok(
    format($$ select * from api.list_payments(%L) $$, :'practice'), '42501', null, 'anon cannot list payments'
);
select throws_ok(
    format($$ select * from api.payment_totals(%L) $$, :'practice'), '42501', null, 'anon cannot read totals'
);
select throws_ok(
    format($$ select api.export_payments_csv(%L) $$, :'practice'), '42501', null, 'anon cannot export'
);
select throws_ok($$ select * from api.contracts $$, '42501', null, 'anon cannot read contracts');
select throws_ok(
    format($$ select * from api.payment_csv_lines(%L) $$, :'practice'), '42501', null, 'anon cannot read CSV lines'
);
select tests.clear_authentication();

select * from finish();
rollback;
