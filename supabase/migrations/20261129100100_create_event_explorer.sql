-- Event explorer: owners and admins of a practice read its webhook events (time, type,
-- status, attempts, last error, payload with card data masked) and may replay one.
--
-- Reading: RLS select policy on app.webhook_events for the practice's owners and admins,
-- and column grants that leave out payload and raw_body: clients read payload_masked, a
-- generated column (private.mask_card_data), through the security_invoker view.
-- Replaying: api.replay_webhook_event (security invoker) calls private.request_event_replay,
-- a security definer granted to authenticated that checks the caller against
-- private.current_admin_practice_ids() itself before calling private.replay_events. An
-- event the caller may not see is reported as not found (its existence is not revealed).

-- ---------------------------------------------------------------------------
-- Masking
-- ---------------------------------------------------------------------------
create function private.mask_card_data(p_value jsonb, p_key text default null)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
    v_key text := lower(regexp_replace(coalesce(p_key, ''), '[^a-zA-Z0-9]', '', 'g'));
    v_text text;
    v_digits text;
begin
    case pg_catalog.jsonb_typeof(p_value)
        when 'object' then
            return coalesce((
                select pg_catalog.jsonb_object_agg(e.key, private.mask_card_data(e.value, e.key))
                from pg_catalog.jsonb_each(p_value) as e
            ), '{}'::jsonb);
        when 'array' then
            return coalesce((
                select pg_catalog.jsonb_agg(private.mask_card_data(a.value, p_key) order by a.ord)
                from pg_catalog.jsonb_array_elements(p_value) with ordinality as a (value, ord)
            ), '[]'::jsonb);
        when 'string', 'number' then
            v_text := p_value #>> '{}';
            if v_key in (
                'cvv', 'cvv2', 'cvc', 'cvc2', 'securitycode', 'track', 'track1', 'track2', 'trackdata',
                'pin', 'pinblock', 'expiry', 'expirydate', 'expirationdate', 'expirymonth', 'expiryyear',
                'expmonth', 'expyear', 'token', 'cardtoken'
            ) and v_text <> '' then
                return pg_catalog.to_jsonb('****'::text);
            end if;
            v_digits := regexp_replace(v_text, '[\s-]', '', 'g');
            if (
                v_key in (
                    'cardnumber', 'number', 'pan', 'accountnumber', 'cardaccountnumber', 'ccnumber',
                    'creditcardnumber', 'account'
                )
                and v_digits ~ '^[0-9]{5,}$'
            ) or (
                -- any other 13 to 19 digit value that is not an id or a known reference
                v_digits ~ '^[0-9]{13,19}$'
                and v_key !~ 'id$'
                and v_key not in (
                    'referencenumber', 'invoicenumber', 'customernumber', 'xmid', 'authorizationcode',
                    'batch', 'receiptnumber'
                )
            ) then
                return pg_catalog.to_jsonb(repeat('*', length(v_digits) - 4) || right(v_digits, 4));
            end if;
            return p_value;
        else
            return p_value;
    end case;
end
$$;
comment on function private.mask_card_data(jsonb, text) is
'A copy of a JSON value with card data masked: card numbers to their last four, CVV, track, '
'expiry and card tokens to ****. Ids and known reference fields are kept.';

alter table app.webhook_events
add column payload_masked jsonb generated always as (private.mask_card_data(payload)) stored;
comment on column app.webhook_events.payload_masked is
'The payload with card data masked (private.mask_card_data): what the event explorer shows.';

-- ---------------------------------------------------------------------------
-- Who reads what
-- ---------------------------------------------------------------------------
grant select (
    id, received_at, practice_id, merchant_account_id, mx_merchant_id, event_type, payment_id, origin,
    status, reject_reason, attempts, last_error, processed_at, duplicate_count, last_duplicate_at,
    payload_masked
) on app.webhook_events to authenticated;

create policy webhook_events_select_admin on app.webhook_events
for select to authenticated
using (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

grant select on app.event_replays to authenticated;

create policy event_replays_select_admin on app.event_replays
for select to authenticated
using (practice_id = any((select private.current_admin_practice_ids())::uuid[]));

create view api.webhook_events with (security_invoker = true) as
select
    e.id,
    e.practice_id,
    e.received_at,
    e.mx_merchant_id,
    e.event_type,
    e.payment_id,
    e.origin,
    e.status,
    e.attempts,
    e.last_error,
    e.reject_reason,
    e.processed_at,
    e.duplicate_count,
    e.payload_masked as payload
from app.webhook_events as e;
comment on view api.webhook_events is
'Owners/admins: the practice''s MX notifications, their processing status and errors, card data masked.';
grant select on api.webhook_events to authenticated;

create view api.webhook_event_replays with (security_invoker = true) as
select
    r.id,
    r.event_id,
    r.practice_id,
    r.replayed_at,
    r.replayed_by,
    r.actor_user_id,
    r.previous_status,
    r.previous_attempts,
    r.previous_error
from app.event_replays as r;
comment on view api.webhook_event_replays is 'Owners/admins: replays of the practice''s events and what they replaced.';
grant select on api.webhook_event_replays to authenticated;

-- ---------------------------------------------------------------------------
-- Replay
-- ---------------------------------------------------------------------------
create function private.request_event_replay(p_event_id bigint)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_practice_id uuid;
    v_outcome text;
    v_previous text;
    v_msg_id bigint;
begin
    select e.practice_id into v_practice_id from app.webhook_events as e where e.id = p_event_id;
    if v_practice_id is null or not v_practice_id = any(private.current_admin_practice_ids()) then
        raise exception 'event % not found', p_event_id using errcode = 'P0002';
    end if;
    select r.outcome, r.previous_status, r.msg_id into v_outcome, v_previous, v_msg_id
    from private.replay_events(
        array[p_event_id], 'api', (select auth.uid()), array['dead', 'processed']
    ) as r;
    if v_outcome is distinct from 'replayed' then
        raise exception 'event % cannot be replayed (status %): only dead or processed payment events can',
            p_event_id, v_previous
        using errcode = '22023';
    end if;
    return pg_catalog.jsonb_build_object(
        'event_id', p_event_id, 'status', 'queued', 'previous_status', v_previous
    );
end
$$;
comment on function private.request_event_replay(bigint) is
'Replay one event of a practice the caller is an owner or admin of (checked here); '
'dead or processed payment events only.';
grant execute on function private.request_event_replay(bigint) to authenticated;

create function api.replay_webhook_event(p_event_id bigint)
returns jsonb
language sql
security invoker
set search_path = ''
as $$
    select private.request_event_replay(p_event_id)
$$;
comment on function api.replay_webhook_event(bigint) is
'Owners/admins: queue one of the practice''s payment events again (dead or processed); '
'the worker fetches it from MX and applies it idempotently.';
grant execute on function api.replay_webhook_event(bigint) to authenticated;
