-- "Sync now" requests: owners and admins of a practice ask (one open request per merchant
-- account, a clear refusal otherwise); staff, another practice and anon ask nothing and see
-- nothing; the worker claims them one at a time (skip locked), links its run, finishes them,
-- claims again one whose worker died and gives up after its attempts.
begin;
\ir _helpers.psql

select plan(43);

select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_practice('Clinic C', 'clinic-c') as practice_c \gset
select tests.create_user('owner-a@example.test') as owner_a \gset
select tests.create_user('admin-a@example.test') as admin_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('owner-b@example.test') as owner_b \gset
select tests.create_user('owner-c@example.test') as owner_c \gset
select tests.add_member(:'practice_a', :'owner_a', 'owner');
select tests.add_member(:'practice_a', :'admin_a', 'admin');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'owner_b', 'owner');
select tests.add_member(:'practice_c', :'owner_c', 'owner');
select tests.create_merchant_account(:'practice_a', 4301) as account_a1 \gset
select tests.create_merchant_account(:'practice_a', 4302) as account_a2 \gset
select tests.create_merchant_account(:'practice_b', 4303) as account_b \gset
-- practice C has no merchant account

-- ---------------------------------------------------------------------------
-- asking
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'owner_a');
select is(
    (select array_agg(array[mx_merchant_id::text, created::text] order by mx_merchant_id) from api.request_sync(:'practice_a')),
    array[array['4301', 'true'], array['4302', 'true']],
    'the owner asks for a sync: one request per merchant account of the practice'
);
select is(
    (select array_agg(status order by mx_merchant_id) from api.sync_requests),
    array['pending', 'pending'], 'the owner sees both requests pending'
);
select is(
    (select count(*)::integer from api.sync_requests where requested_by = :'owner_a'),
    2, 'the request records who asked'
);

select tests.authenticate_as(:'admin_a');
select throws_ok(
    format('select * from api.request_sync(%L)', :'practice_a'),
    '23505', 'a sync of this practice is already pending: wait for it to finish',
    'an admin asking again while both are pending is refused with a clear message'
);
select is((select count(*)::integer from api.sync_requests), 2, 'the admin sees the practice''s requests');
select throws_ok(
    'select * from api.request_sync(null)', '22023', 'a practice is required',
    'no practice: refused'
);

select tests.authenticate_as(:'staff_a');
select throws_ok(
    format('select * from api.request_sync(%L)', :'practice_a'),
    '42501', 'only owners and admins of the practice may ask for a sync',
    'staff may not ask for a sync'
);
select is((select count(*)::integer from api.sync_requests), 0, 'staff see no request');

select tests.authenticate_as(:'owner_b');
select throws_ok(
    format('select * from api.request_sync(%L)', :'practice_a'),
    'P0002', null, 'another practice''s owner: the practice is not found'
);
select is((select count(*)::integer from api.sync_requests), 0, 'another practice''s owner sees none of A''s requests');
select is(
    (select array_agg(mx_merchant_id) from api.request_sync(:'practice_b')),
    array[4303::bigint], 'the owner of B asks for B only'
);

select tests.authenticate_as(:'owner_c');
select throws_ok(
    format('select * from api.request_sync(%L)', :'practice_c'),
    '22023', 'this practice has no active merchant account with API credentials to sync',
    'a practice without a merchant account: a clear refusal'
);

select tests.authenticate_as_anon();
select throws_ok(
    format('select * from api.request_sync(%L)', :'practice_a'), '42501', null, 'anon may not ask'
);
select throws_ok('select count(*) from api.sync_requests', '42501', null, 'anon reads nothing');

select tests.clear_authentication();
select is(
    (select count(*)::integer from app.sync_requests), 3,
    'the refusals changed nothing: two requests of A, one of B'
);

-- ---------------------------------------------------------------------------
-- who may carry them out
-- ---------------------------------------------------------------------------
select ok(
    has_function_privilege('mx_worker', 'private.claim_sync_request(text, interval, integer)', 'execute')
    and has_function_privilege('mx_worker', 'private.finish_sync_request(bigint, boolean, text)', 'execute')
    and has_function_privilege('mx_worker', 'private.attach_sync_run(bigint, bigint)', 'execute')
    and has_function_privilege('mx_worker', 'private.release_sync_request(bigint, interval)', 'execute'),
    'the worker may claim, link, finish and release requests'
);
select ok(
    not has_function_privilege('authenticated', 'private.claim_sync_request(text, interval, integer)', 'execute')
    and not has_function_privilege('authenticated', 'private.finish_sync_request(bigint, boolean, text)', 'execute')
    and not has_function_privilege('anon', 'private.request_sync(uuid)', 'execute'),
    'signed-in users cannot claim or finish; anon cannot ask'
);
select ok(
    not has_table_privilege('authenticated', 'app.sync_requests', 'insert')
    and not has_table_privilege('authenticated', 'app.sync_requests', 'update')
    and not has_table_privilege('authenticated', 'app.sync_requests', 'delete'),
    'signed-in users write requests only through api.request_sync'
);

-- ---------------------------------------------------------------------------
-- claiming, linking, finishing
-- ---------------------------------------------------------------------------
select id as req_a1 from app.sync_requests where merchant_account_id = :'account_a1' \gset
select id as req_a2 from app.sync_requests where merchant_account_id = :'account_a2' \gset
select id as req_b from app.sync_requests where merchant_account_id = :'account_b' \gset
update app.sync_requests set requested_at = now() - interval '3 minutes' where id = :req_a1;
update app.sync_requests set requested_at = now() - interval '2 minutes' where id = :req_a2;
update app.sync_requests set requested_at = now() - interval '1 minute' where id = :req_b;

select results_eq(
    $$ select request_id, mx_merchant_id, attempts from private.claim_sync_request('w1') $$,
    format($$ values (%s::bigint, 4301::bigint, 1) $$, :req_a1),
    'the oldest pending request is claimed first'
);
select results_eq(
    format($$ select status, claimed_by from app.sync_requests where id = %s $$, :req_a1),
    $$ values ('running', 'w1') $$, 'a claimed request is running, with its worker'
);
select is(
    (select request_id from private.claim_sync_request('w2')), :req_a2::bigint,
    'the next claim takes the next request, not the running one'
);
select is(
    (select request_id from private.claim_sync_request('w3')), :req_b::bigint, 'then B''s'
);
select is(
    (select count(*)::integer from private.claim_sync_request('w4')), 0, 'nothing left to claim'
);

select private.start_sync_run(:'account_a1', 'reconcile', 'request') as run_a1 \gset
select private.attach_sync_run(:req_a1, :run_a1);
select private.record_sync_progress(:run_a1, 2, 3, 1, '{}');
select tests.authenticate_as(:'admin_a');
select results_eq(
    format($$ select status, sync_run_id, run_status, run_pages, run_found, run_queued from api.sync_requests where id = %s $$, :req_a1),
    format($$ values ('running', %s::bigint, 'running', 2, 3, 1) $$, :run_a1),
    'the page reads the progress of the run that carries the request out'
);
select tests.clear_authentication();
select private.finish_sync_run(:run_a1, true, null, 2, 3, 1);
select is(private.finish_sync_request(:req_a1, true, null), 'done', 'a succeeded run finishes the request as done');
select is(private.finish_sync_request(:req_a1, false, 'late'), null, 'a finished request cannot be finished again');

select is(
    private.finish_sync_request(:req_b, false, 'MX: 401 Unauthorized'), 'failed',
    'a failure at MX finishes the request as failed'
);
select results_eq(
    format($$ select status, error, finished_at is not null from app.sync_requests where id = %s $$, :req_b),
    $$ values ('failed', 'MX: 401 Unauthorized', true) $$, 'with its reason'
);

select tests.authenticate_as(:'owner_a');
select is(
    (select array_agg(array[mx_merchant_id::text, created::text] order by mx_merchant_id) from api.request_sync(:'practice_a')),
    array[array['4301', 'true'], array['4302', 'false']],
    'once done, an account may be synced again; the other still has its open request'
);
select tests.clear_authentication();
select id as req_a1_again from app.sync_requests where merchant_account_id = :'account_a1' and status = 'pending' \gset

-- ---------------------------------------------------------------------------
-- a worker that died, a worker that hands back
-- ---------------------------------------------------------------------------
-- w2 died while carrying out req_a2, after its run had a heartbeat: not yet claimable
select private.start_sync_run(:'account_a2', 'reconcile', 'request') as run_a2 \gset
select private.attach_sync_run(:req_a2, :run_a2);
update app.sync_requests set claimed_at = now() - interval '1 hour' where id = :req_a2;
update app.sync_requests set available_at = now() + interval '1 minute' where id = :req_a1_again;
select is(
    (select count(*)::integer from private.claim_sync_request('w5')), 0,
    'a request whose run still has a fresh heartbeat is not claimed again'
);
update app.sync_runs set heartbeat_at = now() - interval '1 hour' where id = :run_a2;
select results_eq(
    $$ select request_id, attempts from private.claim_sync_request('w5') $$,
    format($$ values (%s::bigint, 2) $$, :req_a2),
    'once the heartbeat is stale, another worker claims it again (second attempt)'
);
select results_eq(
    format($$ select claimed_by, sync_run_id from app.sync_requests where id = %s $$, :req_a2),
    $$ values ('w5', null::bigint) $$, 'the new claim starts without the dead run'
);
update app.sync_requests set claimed_at = now() - interval '1 hour', attempts = 3 where id = :req_a2;
select is(
    (select count(*)::integer from private.claim_sync_request('w6')), 0,
    'a request that used its attempts is not claimed again'
);
select matches(
    (select status || ': ' || error from app.sync_requests where id = :req_a2),
    '^failed: abandoned', 'it is recorded as failed, never left running'
);

-- hand back: pending again, later, the attempt not counted
update app.sync_requests set available_at = now() where id = :req_a1_again;
select is(
    (select request_id from private.claim_sync_request('w7')), :req_a1_again::bigint,
    'the new request is claimed'
);
select private.release_sync_request(:req_a1_again, interval '30 seconds');
select results_eq(
    format($$ select status, attempts, claimed_by, available_at > now() from app.sync_requests where id = %s $$, :req_a1_again),
    $$ values ('pending', 0, null::text, true) $$,
    'a released request is pending again, later, the attempt not counted'
);
select is(
    (select count(*)::integer from private.claim_sync_request('w8')), 0,
    'and is not claimed before its time'
);

-- another practice's worker cannot be tricked through the api: a signed-in user calling the
-- worker's functions is refused
select tests.authenticate_as(:'owner_a');
select throws_ok(
    $$ select * from private.claim_sync_request('x') $$, '42501', null,
    'an owner cannot claim requests'
);
select throws_ok(
    format('select private.finish_sync_request(%s, true, null)', :req_a1_again), '42501', null,
    'an owner cannot finish a request'
);
select tests.clear_authentication();

-- retention: finished requests older than the limit go, in batches; open ones never
update app.sync_requests set finished_at = now() - interval '40 days' where status in ('done', 'failed');
select is(private.prune_sync_requests(30, 1), 1, 'one batch of one old finished request is pruned');
select is(private.prune_sync_requests(30, 100), 2, 'then the other old finished ones');
select is(
    (select array_agg(status order by id) from app.sync_requests), array['pending'],
    'the open request stays'
);

-- a run for a request says so
select is(
    (select run_by from app.sync_runs where id = :run_a1), 'request', 'its run is recorded as run_by request'
);

select * from finish();
rollback;
