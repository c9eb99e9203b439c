-- Event explorer: owners and admins of a practice read its webhook events (card data masked)
-- and replay them; staff, other practices and anon see nothing and replay nothing.
begin;
\ir _helpers.psql

select plan(18);

select tests.create_practice('Clinic A', 'clinic-a') as practice_a \gset
select tests.create_practice('Clinic B', 'clinic-b') as practice_b \gset
select tests.create_user('owner-a@example.test') as owner_a \gset
select tests.create_user('admin-a@example.test') as admin_a \gset
select tests.create_user('staff-a@example.test') as staff_a \gset
select tests.create_user('admin-b@example.test') as admin_b \gset
select tests.add_member(:'practice_a', :'owner_a', 'owner');
select tests.add_member(:'practice_a', :'admin_a', 'admin');
select tests.add_member(:'practice_a', :'staff_a', 'staff');
select tests.add_member(:'practice_b', :'admin_b', 'admin');
select tests.create_merchant_account(:'practice_a', 1001) as account_a \gset
select tests.create_merchant_account(:'practice_b', 2002) as account_b \gset

-- A: one event that died, one rejected event carrying a card number; B: one queued event
select tests.receive_payment_event(1001, 11001) as dead_a \gset
select tests.claim_event(:dead_a) as dead_msg \gset
select private.dead_letter_ingest_event(:dead_msg, :dead_a, 'not_found: payment 11001');
insert into app.webhook_events (practice_id, merchant_account_id, mx_merchant_id, event_type, status, payload)
values (
    :'practice_a', :'account_a', 1001, 'PaymentSuccess', 'rejected',
    '{"id": "4000000012345678", "cardNumber": "4111 1111 1111 1111", "pan4": "1111",
      "cardAccount": {"number": "5500005555555559", "cvv": "123", "last4": "5559"}}'
)
returning id as rejected_a \gset
select tests.receive_payment_event(2002, 12001) as event_b \gset

-- ---------------------------------------------------------------------------
-- Reading
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'owner_a');
select is((select count(*) from api.webhook_events), 2::bigint, 'owner of A sees A''s two events');

select tests.authenticate_as(:'admin_a');
select is(
    (select count(*) from api.webhook_events where practice_id = :'practice_a'), 2::bigint,
    'admin of A sees A''s two events'
);
select is(
    (select count(*) from api.webhook_events where practice_id = :'practice_b'), 0::bigint,
    'admin of A sees none of B''s'
);
select is(
    (select last_error from api.webhook_events where id = :dead_a), 'not_found: payment 11001',
    'the last error is shown'
);
select is(
    (select payload -> 'cardNumber' from api.webhook_events where id = :rejected_a), '"************1111"'::jsonb,
    'a card number is masked to its last four'
);
select is(
    (select payload -> 'cardAccount' from api.webhook_events where id = :rejected_a),
    '{"number": "************5559", "cvv": "****", "last4": "5559"}'::jsonb,
    'nested card data is masked too'
);
select is(
    (select payload ->> 'id' from api.webhook_events where id = :rejected_a), '4000000012345678',
    'the payment id is kept'
);
select throws_ok(
    'select payload from app.webhook_events', '42501', null,
    'the unmasked payload column is not readable by clients'
);

select tests.authenticate_as(:'staff_a');
select is((select count(*) from api.webhook_events), 0::bigint, 'staff of A see no events');

select tests.authenticate_as(:'admin_b');
select is(
    (select count(*) from api.webhook_events where practice_id = :'practice_a'), 0::bigint,
    'admin of B sees none of A''s events'
);
select is((select count(*) from api.webhook_events), 1::bigint, 'admin of B sees B''s event');

select tests.authenticate_as_anon();
select throws_ok('select count(*) from api.webhook_events', '42501', null, 'anon reads nothing');

-- ---------------------------------------------------------------------------
-- Replaying
-- ---------------------------------------------------------------------------
select tests.authenticate_as(:'admin_b');
select throws_ok(
    format('select api.replay_webhook_event(%s)', :dead_a), 'P0002', null,
    'admin of B cannot replay A''s event'
);
select tests.authenticate_as(:'staff_a');
select throws_ok(
    format('select api.replay_webhook_event(%s)', :dead_a), 'P0002', null,
    'staff of A cannot replay an event'
);
select tests.authenticate_as(:'admin_a');
select throws_ok(
    format('select api.replay_webhook_event(%s)', :rejected_a), '22023', null,
    'a rejected event cannot be replayed'
);
select is(
    api.replay_webhook_event(:dead_a) ->> 'previous_status', 'dead', 'admin of A replays A''s dead event'
);
select is((select count(*) from api.webhook_event_replays), 1::bigint, 'the replay is in the history');

select tests.clear_authentication();
select results_eq(
    format(
        'select e.status, e.attempts, (select m.queue_length from private.queue_metrics(''mx_ingest_dlq'') as m) '
        'from app.webhook_events as e where e.id = %s',
        :dead_a
    ),
    $$values ('queued'::text, 0, 0::bigint)$$,
    'the replayed event is queued again with no attempts, its dead letter removed'
);

select * from finish();
rollback;
