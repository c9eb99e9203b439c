-- The read-only `viewer` role (20261201140000): a viewer reads everything staff read, and
-- every api write is refused (and changes nothing); their own preferences stay theirs.
begin;
\ir _helpers.psql

select plan(50);

select tests.create_practice('Clinic V', 'clinic-v') as practice \gset
select tests.create_practice('Clinic W', 'clinic-w') as other \gset
select tests.create_user('owner-v@example.test') as owner \gset
select tests.create_user('staff-v@example.test') as staff \gset
select tests.create_user('viewer-v@example.test') as viewer \gset
select tests.create_user('staff-w@example.test') as staff_w \gset
select tests.add_member(:'practice', :'owner', 'owner');
select tests.add_member(:'practice', :'staff', 'staff');
select tests.add_member(:'practice', :'viewer', 'viewer');
select tests.add_member(:'other', :'staff_w', 'staff');
select tests.create_merchant_account(:'practice', 4004);
select tests.map_product(:'practice', 'Testosterone', 'TRT') as product \gset
select tests.process_payment(
    4004, tests.payment_json(14001, 4004, '2026-01-05 15:00+00', p_customer_name => 'Vera Viewed'),
    tests.invoice_json(24001, 801, 'Vera Viewed', array['Testosterone'])
) as event \gset
select m.id as membership from app.memberships as m where m.practice_id = :'practice' \gset
select i.id as invoice from app.invoices as i where i.practice_id = :'practice' \gset
select p.id as patient from app.patients as p where p.practice_id = :'practice' \gset
select tests.category_id(:'practice', 'TRT') as trt \gset
update app.products set suggested_category_id = :'trt' where id = :'product';
insert into app.referral_sources (practice_id, code, label) values (:'practice', 'flyer', 'Flyer')
on conflict do nothing;
insert into app.category_rules (practice_id, keyword, category_id) values (:'practice', 'testo', :'trt');

select throws_ok(
    format('insert into app.practice_members (practice_id, user_id, role) values (%L, %L, %L)',
        :'practice', tests.create_user('bogus-v@example.test'), 'auditor'),
    '23514', null, 'the roles are owner, admin, staff and viewer, nothing else'
);

-- ---------------------------------------------------------------------------
-- Reads: the viewer sees what staff see
-- ---------------------------------------------------------------------------
create function tests.visible_counts(p_practice_id uuid)
returns bigint[]
language sql
set search_path = ''
as $$
    select array[
        (select count(*) from api.memberships where practice_id = p_practice_id),
        (select count(*) from api.invoices where practice_id = p_practice_id),
        (select count(*) from api.invoice_lines where practice_id = p_practice_id),
        (select count(*) from api.patients where practice_id = p_practice_id),
        (select count(*) from api.payments where practice_id = p_practice_id),
        (select count(*) from api.products where practice_id = p_practice_id),
        (select count(*) from api.categories where practice_id = p_practice_id),
        (select count(*) from api.referral_sources where practice_id = p_practice_id),
        (select count(*) from api.membership_events where practice_id = p_practice_id),
        (select count(*) from api.practice_members where practice_id = p_practice_id),
        (select count(*) from api.list_memberships(p_practice_id)),
        (select count(*) from api.membership_tab_counts(p_practice_id)),
        (select count(*) from api.practice_metrics(p_practice_id, '2026-01-01', '2026-01-31'))
    ]
$$;
grant execute on function tests.visible_counts(uuid) to authenticated;

select tests.authenticate_as(:'staff');
select tests.visible_counts(:'practice') as staff_counts \gset
select tests.clear_authentication();
select tests.authenticate_as(:'viewer');
select is(tests.visible_counts(:'practice'), :'staff_counts'::bigint[], 'a viewer reads every list staff read');
select ok((:'staff_counts'::bigint[])[1] > 0 and (:'staff_counts'::bigint[])[2] > 0, 'and there is something to read');
select is(
    (api.patient_detail(:'patient') -> 'patient' ->> 'name'), 'Vera Viewed', 'a viewer opens a patient'
);
select is(
    (select count(*) from api.list_memberships(:'other')), 0::bigint, 'a viewer reads nothing of another practice'
);

-- ---------------------------------------------------------------------------
-- Every api write, as a viewer: refused
-- ---------------------------------------------------------------------------
select throws_ok(
    format('select api.update_membership_workflow(%L, %L)', :'membership', '{"notes": "x"}'),
    '42501', null, 'update_membership_workflow: refused'
);
select throws_ok(
    format('select api.set_membership_status(%L, %L, %L)', :'membership', 'paused', 'travel'),
    '42501', null, 'set_membership_status: refused'
);
select throws_ok(
    format('select api.treat_as_member(%L, true, %L)', :'membership', 'pays by hand'),
    '42501', null, 'treat_as_member: refused'
);
select throws_ok(
    format('select api.update_invoice_followup(%s, %L)', :'invoice', '{"data_sent_status": "yes"}'),
    '42501', null, 'update_invoice_followup: refused'
);
select throws_ok(
    format('update app.memberships set notes = %L where id = %L', 'x', :'membership'),
    '42501', null, 'a direct update of a membership: refused'
);
select throws_ok(
    format('update app.invoices set data_sent_notes = %L where id = %s', 'x', :'invoice'),
    '42501', null, 'a direct update of an invoice: refused'
);
select throws_ok(
    format('select api.add_category(%L, %L)', :'practice', 'Peeking'),
    '42501', null, 'add_category: refused'
);
select throws_ok(
    format('select api.rename_category(%L, %L)', :'trt', 'Renamed'),
    '42501', null, 'rename_category: refused'
);
select throws_ok(
    format('select api.set_category_rule(%L, %L, %L)', :'practice', 'peek', :'trt'),
    '42501', null, 'set_category_rule: refused'
);
select is(api.delete_category_rule(:'practice', 'testo'), false, 'delete_category_rule: nothing deleted');
select throws_ok(
    format('select api.set_product_category(%L, %L)', :'product', :'trt'),
    '42501', null, 'set_product_category: refused'
);
select throws_ok(
    format('select api.confirm_product_suggestion(%L)', :'product'),
    '42501', null, 'confirm_product_suggestion: refused'
);
select throws_ok(
    format('select api.set_referral_source(%L, %L, %L)', :'practice', 'peek', 'Peek'),
    '42501', null, 'set_referral_source: refused'
);
select is(api.delete_referral_source(:'practice', 'flyer'), false, 'delete_referral_source: nothing deleted');
select throws_ok(
    format('select api.replay_webhook_event(%s)', :'event'),
    'P0002', null, 'replay_webhook_event: refused (the event is not theirs to replay)'
);
select throws_ok(
    format('select api.invite_practice_member(%L, %L, %L)', :'practice', 'new-v@example.test', 'viewer'),
    '42501', null, 'invite_practice_member: refused'
);
select throws_ok(
    format('select api.set_practice_member_role(%L, %L, %L)', :'practice', :'viewer', 'owner'),
    '42501', null, 'set_practice_member_role: refused (not even for themselves)'
);
select throws_ok(
    format('select api.remove_practice_member(%L, %L)', :'practice', :'staff'),
    '42501', null, 'remove_practice_member: refused'
);
select throws_ok(
    format('select api.cancel_member_invitation(%L, 1)', :'practice'),
    '42501', null, 'cancel_member_invitation: refused'
);
select throws_ok(
    format('select api.practice_team(%L)', :'practice'), '42501', null, 'practice_team: owners only'
);
select is(
    api.set_membership_columns(array['status']), array['patient', 'status'],
    'a viewer''s own column preferences stay theirs to set'
);
select tests.clear_authentication();

-- nothing changed
select is(
    (select row(m.notes, m.staff_status, m.treated_as_member)::text from app.memberships as m where m.id = :'membership'),
    row(null::text, null::text, false)::text,
    'the membership is as it was'
);
select is(
    (select i.data_sent_status from app.invoices as i where i.id = :'invoice') is distinct from 'yes', true,
    'the invoice follow-up is as it was'
);
select is(
    (select count(*) from app.categories where practice_id = :'practice' and name in ('Peeking', 'Renamed')),
    0::bigint, 'no programme added or renamed'
);
select is(
    (select array_agg(keyword order by keyword) from app.category_rules where practice_id = :'practice'),
    array['testo'], 'keyword rules as they were'
);
select is(
    (select count(*) from app.product_category_changes where practice_id = :'practice'), 0::bigint,
    'no product moved'
);
select is(
    (select array_agg(code order by code) from app.referral_sources where practice_id = :'practice' and code in ('flyer', 'peek')),
    array['flyer'], 'referral sources as they were'
);
select is(
    (select count(*) from app.event_replays where event_id = :'event'), 0::bigint, 'no event replayed'
);
select is(
    (select count(*) from app.member_invitations where practice_id = :'practice'), 0::bigint, 'no invitation'
);
select is(
    (select array_agg(role order by role) from app.practice_members where practice_id = :'practice'),
    array['owner', 'staff', 'viewer'], 'the team as it was'
);

-- ---------------------------------------------------------------------------
-- The same writes as staff still work (the viewer rule took nothing from them)
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'staff');
select is(
    api.update_membership_workflow(:'membership', '{"notes": "called"}') ->> 'notes', 'called',
    'staff: update_membership_workflow works'
);
select is(api.set_membership_status(:'membership', 'paused', 'travel'), 'paused', 'staff: set_membership_status works');
select lives_ok(
    format('select api.treat_as_member(%L, false, %L)', :'membership', 'not by hand'),
    'staff: treat_as_member works'
);
select is(
    api.update_invoice_followup(:'invoice', '{"data_sent_status": "yes"}') ->> 'data_sent_status', 'yes',
    'staff: update_invoice_followup works'
);
select throws_ok(
    format('select api.add_category(%L, %L)', :'practice', 'Staff programme'),
    '42501', null, 'staff: owner/admin writes stay refused as before'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- Another practice's staff and anon
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'staff_w');
select throws_ok(
    format('select api.update_membership_workflow(%L, %L)', :'membership', '{"notes": "w"}'),
    'P0002', null, 'another practice''s staff: the membership does not exist for them'
);
select throws_ok(
    format('select api.update_invoice_followup(%s, %L)', :'invoice', '{"data_sent_status": "no"}'),
    'P0002', null, 'another practice''s staff: the invoice does not exist for them'
);
select is(
    (select count(*) from api.memberships where practice_id = :'practice'), 0::bigint,
    'another practice''s staff read nothing'
);
select tests.clear_authentication();
select tests.authenticate_as_anon();
select throws_ok(
    format('select api.update_membership_workflow(%L, %L)', :'membership', '{"notes": "a"}'),
    '42501', null, 'anon: refused'
);
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- The helper answers for the caller only
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'viewer');
select is(private.current_editor_practice_ids(), '{}'::uuid[], 'a viewer edits no practice');
select is(private.current_practice_ids(), array[:'practice'::uuid], 'but belongs to theirs');
select tests.clear_authentication();
select tests.authenticate_as(:'staff');
select is(private.current_editor_practice_ids(), array[:'practice'::uuid], 'staff edit theirs');
select tests.clear_authentication();
select tests.authenticate_as(:'owner');
select is(private.current_editor_practice_ids(), array[:'practice'::uuid], 'owners edit theirs');
select tests.clear_authentication();

-- the operator command gives the viewer role too (to a confirmed account)
update auth.users set email_confirmed_at = now() where id = :'staff';
select is(
    private.set_practice_member('clinic-v', :'staff', 'viewer'), 'role changed',
    'private.set_practice_member (member add) accepts viewer'
);
select throws_ok(
    format('select private.set_practice_member(%L, %L, %L)', 'clinic-v', :'staff', 'auditor'),
    '22023', 'role must be owner, admin, staff or viewer, not "auditor"', 'and refuses an unknown role'
);
select * from finish();
rollback;
