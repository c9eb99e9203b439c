-- Operator procedures: practices, merchant accounts, token rotation, dead-letter replay, status.
begin;
\ir _helpers.psql

select plan(16);

select private.create_practice('Bay', 'bay', 'America/Denver') as practice_id \gset
select is((select timezone from app.practices where slug = 'bay'), 'America/Denver', 'create_practice sets the time zone');
select throws_ok($$select private.create_practice('X', 'x', 'Mars/Base')$$, '22023', null, 'an unknown time zone is refused');
select throws_ok($$select private.update_practice('nope', 'X')$$, 'P0002', null, 'updating an unknown practice fails');
select private.update_practice('bay', p_new_slug => 'bay-2');
select is((select slug from app.practices where id = :'practice_id'), 'bay-2', 'update_practice changes the slug');

select tests.create_merchant_account(:'practice_id', 3003) as account_id \gset
select is(private.set_merchant_active(3003, false), true, 'disabling changes the account');
select is(private.set_merchant_active(3003, false), false, 'disabling twice changes nothing');
select is(
    (select i.outcome from private.ingest_webhook(tests.token_for(3003), tests.webhook_body(3003, 1, 'PaymentSuccess')) as i),
    'unknown_token', 'a disabled account''s webhooks are refused'
);
select private.set_merchant_active(3003, true);
select private.update_merchant_account(3003, p_name => 'New DBA');
select is(
    (select name || '/' || environment from app.merchant_accounts where mx_merchant_id = 3003), 'New DBA/sandbox',
    'update_merchant_account keeps what it is not given'
);

-- rotations happen in separate transactions: the first token is older
update app.webhook_tokens set created_at = created_at - interval '1 hour' where merchant_account_id = :'account_id';
select private.add_webhook_token(:'account_id', tests.token_for(3003, 'b'));
select is(
    (select active_tokens from private.operator_merchant_accounts() where mx_merchant_id = 3003), 2::bigint,
    'two tokens are valid during a rotation'
);
select is(private.retire_older_webhook_tokens(3003), 1, 'retiring keeps only the newest');
select is(
    (select i.outcome from private.ingest_webhook(tests.token_for(3003, 'b'), tests.webhook_body(3003, 2, 'PaymentSuccess')) as i),
    'queued', 'the newest token still works'
);

-- dead letters
select i.event_id
from private.ingest_webhook(tests.token_for(3003, 'b'), tests.webhook_body(3003, 3, 'PaymentSuccess')) as i \gset
select tests.claim_event(:event_id) as msg_id \gset
select private.dead_letter_ingest_event(:msg_id, :event_id, 'boom');
select private.queue_send('mx_ingest_dlq', '{"event_id": -1, "reason": "another"}');
select is(
    (select count(*) from private.dead_letters(3003, null, 10)), 1::bigint, 'dead_letters lists the dead event'
);
select results_eq(
    format('select outcome from private.replay_events(array[%s, -5]::bigint[], %L) order by event_id', :event_id, 'test'),
    $$values ('not_found'::text), ('replayed'::text)$$,
    'replay_events reports per id'
);
select is(tests.queue_length('mx_ingest_dlq'), 1::bigint, 'only the replayed event''s dead letter is removed');
select is(
    (select outcome from private.replay_events(array[:event_id]::bigint[], 'test')), 'not_replayable',
    'a queued event is not replayed again'
);

select ok(
    private.operator_status() ?& array['ingest', 'dead_letters', 'events_last_24h', 'merchants'],
    'operator_status reports queues, events and merchants'
);

select * from finish();
rollback;
