-- Dashboard API: list (filters, sort, keyset pages), tab counts, metrics on a crafted data
-- set, patient detail, CSV export, invoice follow-up audit; member of A, member of B, anon.
begin;
\ir _helpers.psql

select plan(27);

select tests.create_practice('Clinic M', 'clinic-m') as pm \gset
select tests.create_practice('Clinic B', 'clinic-b') as pb \gset
select tests.create_user('staff-m@example.test') as staff_m \gset
select tests.create_user('staff-b@example.test') as staff_b \gset
select tests.add_member(:'pm', :'staff_m', 'staff');
select tests.add_member(:'pb', :'staff_b', 'staff');
select tests.category_id(:'pm', 'TRT') as trt \gset
select tests.category_id(:'pm', 'Weight Loss') as wl \gset

-- Crafted memberships (all TRT unless said), period under test: 2026-03-01 .. 2026-03-31 (UTC).
--   m1 Zoe   100 monthly  active since 01-10                         start active, end active
--   m2 Amy   200 monthly  active 01-15, canceled 03-10                start active, end canceled
--   m3 Bob    52 weekly   first active 03-05 (new)                    end active
--   m4 Carl  120 yearly   active 01-20, paused 02-10, active 03-20    start paused, end active (reactivated)
--   m5 Dana   90 monthly  active 01-05, past_due 03-25                start active, end past_due
--   m6 Amy    80 monthly  Weight Loss, active 01-02                   start active, end active
create function tests.add_membership(
    p_practice uuid, p_name text, p_category uuid, p_status text, p_amount numeric, p_interval text,
    p_started date, p_last_paid timestamptz, p_events jsonb
)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
    v_patient uuid;
    v_id uuid;
    v_e jsonb;
begin
    select id into v_patient from app.patients where practice_id = p_practice and name = p_name;
    if v_patient is null then
        insert into app.patients (practice_id, name) values (p_practice, p_name) returning id into v_patient;
    end if;
    insert into app.memberships (
        practice_id, patient_id, category_id, status, status_source, started_on, last_paid_at, amount,
        billing_interval
    )
    values (p_practice, v_patient, p_category, p_status, 'payment', p_started, p_last_paid, p_amount, p_interval)
    returning id into v_id;
    for v_e in select value from jsonb_array_elements(p_events) loop
        insert into app.membership_events (practice_id, membership_id, old_status, new_status, source, evidence_at)
        values (p_practice, v_id, v_e ->> 0, v_e ->> 1, 'payment', (v_e ->> 2)::timestamptz);
    end loop;
    return v_id;
end
$$;

select tests.add_membership(:'pm', 'Zoe', :'trt', 'active', 100, 'monthly', '2026-01-10', '2026-03-10',
    '[[null, "active", "2026-01-10"]]') as m1 \gset
select tests.add_membership(:'pm', 'Amy', :'trt', 'canceled', 200, 'monthly', '2026-01-15', '2026-02-15',
    '[[null, "active", "2026-01-15"], ["active", "canceled", "2026-03-10"]]') as m2 \gset
select tests.add_membership(:'pm', 'Bob', :'trt', 'active', 52, 'weekly', '2026-03-05', null,
    '[[null, "active", "2026-03-05"]]') as m3 \gset
select tests.add_membership(:'pm', 'Carl', :'trt', 'active', 120, 'yearly', '2026-01-20', '2026-03-20',
    '[[null, "active", "2026-01-20"], ["active", "paused", "2026-02-10"], ["paused", "active", "2026-03-20"]]')
as m4 \gset
select tests.add_membership(:'pm', 'Dana "D", Jr', :'trt', 'past_due', 90, 'monthly', '2026-01-05', '2026-02-05',
    '[[null, "active", "2026-01-05"], ["active", "past_due", "2026-03-25"]]') as m5 \gset
select tests.add_membership(:'pm', 'Amy', :'wl', 'active', 80, 'monthly', null, '2026-03-02',
    '[[null, "active", "2026-01-02"]]') as m6 \gset
update app.memberships set fulfillment = 'mail_out', google_review_submitted = true where id in (:'m1', :'m4');

-- keyset walk: every page through the API, cursor of the last row
create function tests.walk(p_practice uuid, p_sort text, p_limit integer)
returns uuid[]
language plpgsql
set search_path = ''
as $$
declare
    v_after jsonb;
    v_all uuid [] := '{}';
    v_page uuid [];
    v_cursor jsonb;
begin
    loop
        select array_agg(l.id order by l.ord), (array_agg(l.cursor order by l.ord desc))[1]
        into v_page, v_cursor
        from api.list_memberships(p_practice, p_sort => p_sort, p_after => v_after, p_limit => p_limit)
            with ordinality as l (
                id, practice_id, patient_id, patient_name, category_id, category_name, status, status_source,
                status_changed_at, started_on, last_paid_at, next_billing_on, canceled_at, amount,
                billing_interval, product_names, google_review_submitted, google_review_at, referral_source,
                fulfillment, notes, cursor, ord
            );
        exit when v_page is null;
        v_all := v_all || v_page;
        v_after := v_cursor;
    end loop;
    return v_all;
end
$$;
grant execute on all functions in schema tests to authenticated, anon;

select tests.authenticate_as(:'staff_m');
select is(
    tests.walk(:'pm', 'name', 2),
    array(select id from app.memberships where practice_id = :'pm' order by patient_name_key, id),
    'name asc, pages of 2: every row once, in order'
);
select is(
    tests.walk(:'pm', 'last_paid_at.desc', 4),
    (
        select array_agg(id order by coalesce(last_paid_at, '-infinity'::timestamptz) desc, id desc)
        from app.memberships where practice_id = :'pm'
    ),
    'last_paid_at desc, pages of 4 (a missing date sorts last): no duplicates, no gaps'
);
select is(
    tests.walk(:'pm', 'started_on asc', 1),
    array(select id from app.memberships where practice_id = :'pm'
        order by coalesce(started_on, '-infinity'), id),
    'started_on asc, pages of 1'
);
select is(
    (select count(*) from api.list_memberships(:'pm', 'cancellations')), 1::bigint, 'cancellations tab'
);
select is(
    (select count(*) from api.list_memberships(:'pm', :'wl')), 1::bigint, 'a programme tab'
);
select is(
    (select array_agg(patient_name order by patient_name) from api.list_memberships(:'pm', p_status => '{past_due,canceled}')),
    array['Amy', 'Dana "D", Jr'], 'status filter'
);
select is(
    (select array_agg(patient_name order by patient_name)
        from api.list_memberships(:'pm', p_google_review => true, p_fulfillment => 'mail_out')),
    array['Carl', 'Zoe'], 'google review and fulfilment filters'
);
select is(
    (select array_agg(patient_name order by patient_name)
        from api.list_memberships(:'pm', p_started_from => '2026-01-10', p_started_to => '2026-01-31')),
    array['Amy', 'Carl', 'Zoe'], 'started-on range'
);
select is(
    (select array_agg(distinct patient_name) from api.list_memberships(:'pm', p_search => 'AM')),
    array['Amy'], 'search: partial and case-insensitive'
);
select is(
    (select count(*) from api.list_memberships(:'pm', p_search => '%')), 0::bigint, 'search: % is literal'
);
select throws_ok(
    format($$ select * from api.list_memberships(%L, p_sort => 'amount') $$, :'pm'), '22023', null,
    'an unknown sort is refused'
);
select results_eq(
    format($$ select tab, member_count from api.membership_tab_counts(%L) where member_count > 0 or tab in ('all', 'cancellations') $$, :'pm'),
    format($$ values ('all'::text, 6::bigint), (%L, 5), (%L, 1), ('cancellations', 1) $$, :'trt', :'wl'),
    'tab counts: All, each programme, Cancellations'
);
-- Worked by hand (see the table above):
--   TRT: active at start (03-01) m1 m2 m5 = 3; active at end m1 m3 m4 = 3; past due at end m5 = 1;
--        MRR = 100 + 52*52/12 (225.33) + 120/12 (10.00) + 90 (past_due counts) = 425.33; m2 canceled: 0;
--        new m3 = 1; canceled m2 = 1; reactivated m4 = 1; churn 1/3 = 0.3333
--   Weight Loss: 1 / 1 / 0 / 80.00 / 0 / 0 / 0 / 0.0000;  All: 4 / 4 / 1 / 505.33 / 1 / 1 / 1 / 0.2500
select results_eq(
    format($$ select category_name, active_at_start, active_at_end, past_due_at_end, mrr, new_members, canceled,
        reactivated, churn_rate from api.practice_metrics(%L, '2026-03-01', '2026-03-31')
        where category_id is null or category_name in ('TRT', 'Weight Loss') $$, :'pm'),
    $$ values ('TRT'::text, 3::bigint, 3::bigint, 1::bigint, 425.33::numeric, 1::bigint, 1::bigint, 1::bigint, 0.3333::numeric),
        ('Weight Loss', 1, 1, 0, 80.00, 0, 0, 0, 0.0000), ('All', 4, 4, 1, 505.33, 1, 1, 1, 0.2500) $$,
    'metrics on the crafted set'
);
select matches(
    api.export_memberships_csv(:'pm', p_search => 'dana'),
    e'^patient_name,programme,status,.*\r\n"Dana ""D"", Jr",TRT,past_due,2026-01-05,.*\r\n$',
    'CSV: header, then a quoted field with quotes and a comma'
);
select is(
    array_length(string_to_array(rtrim(api.export_memberships_csv(:'pm'), e'\r\n'), e'\r\n'), 1), 7,
    'CSV: header and every row'
);
select is(
    jsonb_array_length(api.patient_detail((select patient_id from app.memberships where id = :'m2')) -> 'memberships'),
    2, 'patient detail: both of Amy''s memberships'
);

-- member of B sees nothing of M
select tests.authenticate_as(:'staff_b');
select is((select count(*) from api.list_memberships(:'pm')), 0::bigint, 'B: list of M is empty');
select is(
    (select sum(member_count) from api.membership_tab_counts(:'pm')), 0::numeric, 'B: tab counts of M are zero'
);
select is(
    (select count(*) from api.practice_metrics(:'pm', '2026-03-01', '2026-03-31') where active_at_end > 0),
    0::bigint, 'B: metrics of M are empty'
);
select is(
    api.patient_detail((select patient_id from app.memberships where id = :'m1')), null, 'B: no patient detail'
);
select is(api.export_memberships_csv(:'pm'), e'patient_name,programme,status,started_on,last_paid_at,next_billing_on,amount,billing_interval,products,google_review_submitted,referral_source,fulfillment,notes\r\n',
    'B: CSV of M has the header only');
select throws_ok(
    format($$ select api.update_membership_workflow(%L, '{"notes": "x"}') $$, :'m1'), 'P0002', null,
    'B: cannot edit M''s workflow'
);

-- anon
select tests.authenticate_as_anon();
select throws_ok(
    format($$ select * from api.list_memberships(%L) $$, :'pm'), '42501', null, 'anon: list denied'
);
select throws_ok(
    format($$ select * from api.practice_metrics(%L, '2026-03-01', '2026-03-31') $$, :'pm'), '42501', null,
    'anon: metrics denied'
);

-- invoice follow-up, audited
select tests.clear_authentication();
select tests.create_merchant_account(:'pm', 7001) as acct \gset
insert into app.invoices (id, practice_id, merchant_account_id, raw, fetched_at, source_event_id)
values (91001, :'pm', :'acct', '{}', now(), 1);
select tests.authenticate_as(:'staff_m');
select is(
    api.update_invoice_followup(91001, '{"data_sent_status": "yes", "data_sent_notes": "faxed"}') ->> 'data_sent_status',
    'yes', 'staff update the pharmacy follow-up'
);
select throws_ok(
    $$ select api.update_invoice_followup(91001, '{"total_amount": 0}') $$, '22023', null,
    'only follow-up fields are editable'
);
select tests.clear_authentication();
select results_eq(
    $$ select table_name, changed_by, old_values ->> 'data_sent_status', new_values ->> 'data_sent_status',
        new_values ->> 'data_sent_notes', new_values ? 'data_sent_at'
        from app.workflow_audit where row_id = '91001' $$,
    format($$ values ('invoices'::text, %L::uuid, 'pending'::text, 'yes'::text, 'faxed'::text, true) $$, :'staff_m'),
    'the follow-up edit is audited with who, old and new values'
);

select * from finish();
rollback;
