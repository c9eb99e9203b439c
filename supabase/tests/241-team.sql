-- The Team page's api (20261201140100): owners list their staff, invite by e-mail, change a
-- role, remove someone, cancel an invitation; the last owner stays; the worker's side.
begin;
\ir _helpers.psql

select plan(45);

select tests.create_practice('Clinic T', 'clinic-t') as practice \gset
select tests.create_practice('Clinic U', 'clinic-u') as other \gset
select tests.create_user('owner-t@example.test') as owner \gset
select tests.create_user('admin-t@example.test') as admin \gset
select tests.create_user('staff-t@example.test') as staff \gset
select tests.create_user('viewer-t@example.test') as viewer \gset
select tests.create_user('owner-u@example.test') as owner_u \gset
select tests.create_user('confirmed@example.test') as confirmed \gset
select tests.create_user('squatter@example.test') as squatter \gset
update auth.users set email_confirmed_at = now(), last_sign_in_at = '2026-11-30 10:00+00'
where id in (:'confirmed', :'owner');
select tests.add_member(:'practice', :'owner', 'owner');
select tests.add_member(:'practice', :'admin', 'admin');
select tests.add_member(:'practice', :'staff', 'staff');
select tests.add_member(:'practice', :'viewer', 'viewer');
select tests.add_member(:'other', :'owner_u', 'owner');

-- ---------------------------------------------------------------------------
-- Only owners of the practice
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'admin');
select throws_ok(format('select * from api.practice_team(%L)', :'practice'), '42501',
    'only an owner of this practice may manage its team', 'admin: no team list');
select throws_ok(format('select api.invite_practice_member(%L, %L, %L)', :'practice', 'x@example.test', 'staff'),
    '42501', null, 'admin: no invitation');
select throws_ok(format('select api.set_practice_member_role(%L, %L, %L)', :'practice', :'staff', 'admin'),
    '42501', null, 'admin: no role change');
select throws_ok(format('select api.remove_practice_member(%L, %L)', :'practice', :'staff'),
    '42501', null, 'admin: no removal');
select tests.clear_authentication();
select tests.authenticate_as(:'staff');
select throws_ok(format('select * from api.practice_team(%L)', :'practice'), '42501', null, 'staff: no team list');
select throws_ok(format('select api.remove_practice_member(%L, %L)', :'practice', :'viewer'),
    '42501', null, 'staff: no removal');
select tests.clear_authentication();
select tests.authenticate_as(:'owner_u');
select throws_ok(format('select * from api.practice_team(%L)', :'practice'), '42501', null,
    'another practice''s owner: no team list');
select throws_ok(format('select api.invite_practice_member(%L, %L, %L)', :'practice', 'x@example.test', 'owner'),
    '42501', null, 'another practice''s owner: no invitation');
select throws_ok(format('select api.set_practice_member_role(%L, %L, %L)', :'practice', :'staff', 'viewer'),
    '42501', null, 'another practice''s owner: no role change');
select tests.clear_authentication();
select tests.authenticate_as_anon();
select throws_ok(format('select * from api.practice_team(%L)', :'practice'), '42501', null, 'anon: nothing');
select tests.clear_authentication();

-- ---------------------------------------------------------------------------
-- The owner
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'owner');
select is(
    array(select t.email || ':' || t.role || ':' || t.state from api.practice_team(:'practice') as t),
    array[
        'admin-t@example.test:admin:unconfirmed', 'owner-t@example.test:owner:confirmed',
        'staff-t@example.test:staff:unconfirmed', 'viewer-t@example.test:viewer:unconfirmed'
    ],
    'the team: e-mail, role and state, by e-mail'
);
select is(
    (select t.last_sign_in_at from api.practice_team(:'practice') as t where t.user_id = :'owner'),
    '2026-11-30 10:00+00'::timestamptz, 'with the last sign-in'
);

-- inviting
select is(api.invite_practice_member(:'practice', '  New.Person@Example.test ', 'viewer'), 'invitation queued',
    'a new address: the invitation is queued for the worker');
select tests.clear_authentication();
select is(
    (select row(i.email, i.role, i.status, i.invited_by)::text from app.member_invitations as i where i.practice_id = :'practice'),
    row('new.person@example.test', 'viewer', 'pending', :'owner'::uuid)::text,
    'recorded with the address in lower case, the role and who asked'
);
select tests.authenticate_as(:'owner');
select is(api.invite_practice_member(:'practice', 'new.person@example.test', 'staff'), 'invitation queued',
    'inviting again changes the open invitation');
select tests.clear_authentication();
select is(
    (select array_agg(i.role) from app.member_invitations as i where i.practice_id = :'practice'),
    array['staff'], 'one open invitation per address, with the latest role'
);
select i.id as invitation from app.member_invitations as i where i.practice_id = :'practice' \gset
select tests.authenticate_as(:'owner');
select is(
    (select t.state from api.practice_team(:'practice') as t where t.email = 'new.person@example.test'),
    'invitation pending', 'the team shows it pending'
);
select is(api.invite_practice_member(:'practice', 'confirmed@example.test', 'admin'), 'added',
    'an existing confirmed account gets its role at once');
select is(api.invite_practice_member(:'practice', 'confirmed@example.test', 'admin'), 'unchanged',
    'again: unchanged');
select throws_ok(
    format('select api.invite_practice_member(%L, %L, %L)', :'practice', 'squatter@example.test', 'staff'),
    '42501', 'the account of squatter@example.test has not confirmed its e-mail address and was not invited, so it gets no role',
    'an unconfirmed, uninvited account gets no role (the existing rule)'
);
select throws_ok(
    format('select api.invite_practice_member(%L, %L, %L)', :'practice', 'not an address', 'staff'),
    '22023', 'enter an e-mail address such as name@example.com', 'a bad address: a clear message'
);
select throws_ok(
    format('select api.invite_practice_member(%L, %L, %L)', :'practice', 'ok@example.test', 'superuser'),
    '22023', 'role must be owner, admin, staff or viewer, not "superuser"', 'a bad role: a clear message'
);

-- roles
select is(api.set_practice_member_role(:'practice', :'staff', 'viewer'), 'role changed', 'staff made viewer');
select is(api.set_practice_member_role(:'practice', :'staff', 'viewer'), 'unchanged', 'again: unchanged');
select throws_ok(
    format('select api.set_practice_member_role(%L, %L, %L)', :'practice', :'owner', 'admin'),
    'P0001', 'a practice needs an owner: make someone else an owner before removing or demoting the last one',
    'the last owner cannot demote themselves'
);
select throws_ok(
    format('select api.remove_practice_member(%L, %L)', :'practice', :'owner'),
    'P0001', null, 'nor remove themselves'
);
select throws_ok(
    format('select api.set_practice_member_role(%L, %L, %L)', :'practice', :'owner_u', 'staff'),
    'P0002', 'not a member of this practice', 'someone of another practice: not a member here'
);
select throws_ok(
    format('select api.set_practice_member_role(%L, %L, %L)', :'practice', :'staff', null),
    '22023', null, 'no role: a clear message'
);
select is(api.set_practice_member_role(:'practice', :'admin', 'owner'), 'role changed', 'a second owner');
select is(api.set_practice_member_role(:'practice', :'owner', 'admin'), 'role changed',
    'then the first may step down');
select tests.clear_authentication();
select tests.authenticate_as(:'admin');  -- now an owner
select is(api.remove_practice_member(:'practice', :'viewer'), true, 'the new owner removes someone');
select throws_ok(
    format('select api.remove_practice_member(%L, %L)', :'practice', :'viewer'),
    'P0002', 'not a member of this practice', 'removing them twice: not a member'
);
select throws_ok(
    format('select api.remove_practice_member(%L, %L)', :'other', :'owner_u'),
    '42501', null, 'nobody of another practice'
);
select tests.clear_authentication();
select is(
    (select count(*) from auth.users where id = :'viewer'), 1::bigint, 'the removed person''s account stays'
);
select tests.authenticate_as(:'admin');
select is(
    api.cancel_member_invitation(:'practice', :'invitation'),
    true, 'an open invitation withdrawn'
);
select throws_ok(format('select api.cancel_member_invitation(%L, -1)', :'practice'), 'P0002', null,
    'an unknown invitation: not found');
select is(api.invite_practice_member(:'practice', 'later@example.test', 'viewer'), 'invitation queued',
    'a new invitation for the worker');
select tests.clear_authentication();
select is(
    (select row(p.practice_id, p.role)::text from app.practice_members as p where p.user_id = :'owner_u'),
    row(:'other'::uuid, 'owner')::text, 'the other practice untouched'
);

-- ---------------------------------------------------------------------------
-- The worker's side (role mx_worker): claim, create locally, complete / fail
-- ---------------------------------------------------------------------------
set local role mx_worker;
select is(
    (select row(c.practice_slug, c.email, c.role, c.user_id)::text from private.claim_member_invitation() as c),
    row('clinic-t', 'later@example.test', 'viewer', null::uuid)::text,
    'the worker claims the pending invitation (no account yet)'
);
select private.local_create_invited_user('later@example.test') as later \gset
reset role;
select id as later_invitation from app.member_invitations where email = 'later@example.test' \gset
set local role mx_worker;
select is(
    private.complete_member_invitation(:'later_invitation', :'later'),
    'added', 'the invited account gets its role'
);
select is(
    (select count(*) from private.claim_member_invitation()), 0::bigint, 'nothing pending any more'
);
reset role;
select is(
    (select row(m.role, u.invited_at is not null)::text from app.practice_members as m
        inner join auth.users as u on m.user_id = u.id where m.user_id = :'later'),
    row('viewer', true)::text, 'the account is invited and a viewer of the practice'
);
insert into app.member_invitations (practice_id, email, role) values (:'practice', 'squatter@example.test', 'staff')
returning id as squatter_invitation \gset
set local role mx_worker;
select throws_ok(
    format('select private.complete_member_invitation(%s, %L)', :'squatter_invitation', :'squatter'),
    '42501', null, 'the worker cannot give a role to an unconfirmed, uninvited account either'
);
select lives_ok(
    format('select private.fail_member_invitation(%s, %L)', :'squatter_invitation', 'not confirmed'),
    'the worker records why'
);
reset role;
select tests.authenticate_as(:'admin');
select is(
    (select t.state || ': ' || t.invitation_error from api.practice_team(:'practice') as t where t.email = 'squatter@example.test'),
    'invitation failed: not confirmed', 'the owner sees the failure and why'
);
select tests.clear_authentication();

select * from finish();
rollback;
