-- Operator procedures: what `python -m worker practice|merchant|deadletters|status` calls.
-- The operator command line connects as the database owner; nothing here is granted to a
-- client or service role (default privileges keep execute from public).
--
-- Dead-letter replay: the event row is the truth. A replay, in one transaction,
--   * records the event's previous status, attempts and last error in app.event_replays
--     (the history), then clears last_error and resets attempts to 0, status 'queued';
--   * sends a new message {event_id} to mx_ingest and stores its msg_id on the event;
--   * removes the event's message(s) from mx_ingest_dlq: the DLQ is read through
--     private.queue_read with a short visibility, the matching messages are deleted and
--     every other message read is made visible again at once (private.queue_set_visibility 0).
-- The worker's apply is idempotent (status checked under a row lock, upserts keyed by MX
-- ids and ordered by fetch time), so a replayed event can never be applied twice.

-- ---------------------------------------------------------------------------
-- Practices
-- ---------------------------------------------------------------------------
create function private.check_timezone(p_timezone text)
returns text
language plpgsql
stable
set search_path = ''
as $$
begin
    if not exists (select from pg_catalog.pg_timezone_names as z where z.name = p_timezone) then
        raise exception 'unknown time zone "%" (use an IANA name such as America/Los_Angeles)', p_timezone
        using errcode = '22023';
    end if;
    return p_timezone;
end
$$;
comment on function private.check_timezone(text) is 'Return the time zone name if Postgres knows it, else raise.';

create function private.create_practice(p_name text, p_slug text, p_timezone text default 'UTC')
returns uuid
language sql
security definer
set search_path = ''
as $$
    insert into app.practices (name, slug, timezone)
    values (trim(p_name), lower(trim(p_slug)), private.check_timezone(coalesce(p_timezone, 'UTC')))
    returning id
$$;
comment on function private.create_practice(text, text, text) is
'Operator: create a practice (it gets the default programmes and referral sources).';

create function private.update_practice(
    p_slug text, p_name text default null, p_timezone text default null, p_new_slug text default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    if p_timezone is not null then
        perform private.check_timezone(p_timezone);
    end if;
    update app.practices
    set name = coalesce(trim(p_name), name),
        timezone = coalesce(p_timezone, timezone),
        slug = coalesce(lower(trim(p_new_slug)), slug)
    where slug = p_slug
    returning id into v_id;
    if v_id is null then
        raise exception 'no practice with slug "%"', p_slug using errcode = 'P0002';
    end if;
    return v_id;
end
$$;
comment on function private.update_practice(text, text, text, text) is
'Operator: change a practice''s name, time zone or slug (null keeps the value).';

create function private.operator_practices()
returns table (
    id uuid, slug text, name text, timezone text, merchant_accounts bigint, members bigint,
    created_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
    select
        p.id, p.slug, p.name, p.timezone,
        (select count(*) from app.merchant_accounts as m where m.practice_id = p.id),
        (select count(*) from app.practice_members as pm where pm.practice_id = p.id),
        p.created_at
    from app.practices as p
    order by p.slug
$$;
comment on function private.operator_practices() is 'Operator: every practice with its account and member counts.';

create function private.practice_id_by_slug(p_slug text)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    select p.id into v_id from app.practices as p where p.slug = p_slug;
    if v_id is null then
        raise exception 'no practice with slug "%"', p_slug using errcode = 'P0002';
    end if;
    return v_id;
end
$$;
comment on function private.practice_id_by_slug(text) is 'The id of a practice by slug; raises when unknown.';

-- ---------------------------------------------------------------------------
-- Merchant accounts
-- ---------------------------------------------------------------------------
create function private.merchant_account_id(p_mx_merchant_id bigint)
returns uuid
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_id uuid;
begin
    select m.id into v_id from app.merchant_accounts as m where m.mx_merchant_id = p_mx_merchant_id;
    if v_id is null then
        raise exception 'no merchant account with MX merchant id %', p_mx_merchant_id using errcode = 'P0002';
    end if;
    return v_id;
end
$$;
comment on function private.merchant_account_id(bigint) is
'The id of a merchant account by MX merchant id; raises when unknown.';

create function private.update_merchant_account(
    p_mx_merchant_id bigint,
    p_name text default null,
    p_environment text default null,
    p_practice_id uuid default null
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid := private.merchant_account_id(p_mx_merchant_id);
begin
    update app.merchant_accounts
    set name = coalesce(p_name, name),
        environment = coalesce(p_environment, environment),
        practice_id = coalesce(p_practice_id, practice_id)
    where id = v_id;
    return v_id;
end
$$;
comment on function private.update_merchant_account(bigint, text, text, uuid) is
'Operator: change an account''s name, environment or practice (null keeps the value; '
'credentials go through upsert_merchant_account).';

create function private.set_merchant_active(p_mx_merchant_id bigint, p_active boolean)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid := private.merchant_account_id(p_mx_merchant_id);
begin
    update app.merchant_accounts set is_active = p_active
    where id = v_id and is_active is distinct from p_active;
    return found;
end
$$;
comment on function private.set_merchant_active(bigint, boolean) is
'Operator: enable or disable an account (a disabled account''s webhooks are refused); '
'returns whether anything changed.';

create function private.operator_merchant_accounts()
returns table (
    mx_merchant_id bigint,
    practice_slug text,
    name text,
    environment text,
    is_active boolean,
    has_credentials boolean,
    active_tokens bigint,
    credentials_failed_at timestamptz,
    credentials_error text,
    created_at timestamptz
)
language sql
stable
security definer
set search_path = ''
as $$
    select
        m.mx_merchant_id, p.slug, m.name, m.environment, m.is_active,
        m.credentials_secret_id is not null,
        (
            select count(*) from app.webhook_tokens as t
            where t.merchant_account_id = m.id and t.retired_at is null
        ),
        m.credentials_failed_at, m.credentials_error, m.created_at
    from app.merchant_accounts as m
    inner join app.practices as p on p.id = m.practice_id
    order by p.slug, m.mx_merchant_id
$$;
comment on function private.operator_merchant_accounts() is
'Operator: every merchant account (never its credentials or tokens, only how many tokens are valid).';

create function private.retire_older_webhook_tokens(p_mx_merchant_id bigint)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_account_id uuid := private.merchant_account_id(p_mx_merchant_id);
    v_newest uuid;
begin
    select t.id into v_newest
    from app.webhook_tokens as t
    where t.merchant_account_id = v_account_id and t.retired_at is null
    order by t.created_at desc, t.id desc
    limit 1;
    if v_newest is null then
        raise exception 'merchant % has no valid token to keep', p_mx_merchant_id using errcode = 'P0002';
    end if;
    return private.retire_webhook_tokens(v_account_id, v_newest);
end
$$;
comment on function private.retire_older_webhook_tokens(bigint) is
'Operator: end a rotation by retiring every valid token of the account but the newest.';

-- ---------------------------------------------------------------------------
-- Dead letters and replay
-- ---------------------------------------------------------------------------
create table app.event_replays (
    id bigint generated always as identity primary key,
    event_id bigint not null references app.webhook_events (id) on delete cascade,
    practice_id uuid references app.practices (id) on delete cascade,
    replayed_at timestamptz not null default now(),
    replayed_by text not null,
    actor_user_id uuid references auth.users (id) on delete set null,
    previous_status text not null,
    previous_attempts integer not null,
    previous_error text,
    dlq_messages_removed integer not null default 0,
    msg_id bigint not null
);
create index event_replays_event_id_idx on app.event_replays (event_id, replayed_at desc);
create index event_replays_practice_id_idx on app.event_replays (practice_id, replayed_at desc);
comment on table app.event_replays is
'History of event replays: who replayed which event, and its status, attempts and last error before.';

alter table app.event_replays enable row level security;
-- No client grant: operators read it as the owner; the event explorer shows replays through
-- its own view (added with it).

create function private.dead_letters(
    p_mx_merchant_id bigint default null, p_since timestamptz default null, p_limit integer default 50
)
returns table (
    event_id bigint,
    received_at timestamptz,
    dead_at timestamptz,
    mx_merchant_id bigint,
    event_type text,
    payment_id bigint,
    attempts integer,
    reason text
)
language sql
stable
security definer
set search_path = ''
as $$
    select e.id, e.received_at, e.processed_at, e.mx_merchant_id, e.event_type, e.payment_id,
        e.attempts, e.last_error
    from app.webhook_events as e
    where e.status = 'dead'
        and (p_mx_merchant_id is null or e.mx_merchant_id = p_mx_merchant_id)
        and (p_since is null or e.processed_at >= p_since)
    order by e.processed_at desc nulls last, e.id desc
    limit greatest(coalesce(p_limit, 50), 0)
$$;
comment on function private.dead_letters(bigint, timestamptz, integer) is
'Operator: dead events (newest first), optionally of one merchant and dead since a time.';

-- Replay a set of events. p_statuses: which statuses may be replayed ('dead' for the
-- operator's dead-letter commands; the event explorer also allows 'processed').
-- Outcome per requested id: replayed, not_found, or not_replayable (its status now).
create function private.replay_events(
    p_event_ids bigint[],
    p_replayed_by text,
    p_actor_user_id uuid default null,
    p_statuses text[] default array['dead']
)
returns table (event_id bigint, outcome text, previous_status text, msg_id bigint)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_event app.webhook_events;
    v_msg_id bigint;
    v_replayed bigint [] := '{}';
    v_dlq record;
    v_removed jsonb := '{}';
    v_batch integer;
begin
    for v_event in
        select e.* from app.webhook_events as e
        where e.id = any(p_event_ids)
        order by e.id
        for update
    loop
        if v_event.status <> all(p_statuses) or v_event.payment_id is null then
            event_id := v_event.id;
            outcome := 'not_replayable';
            previous_status := v_event.status;
            msg_id := null;
            return next;
            continue;
        end if;
        v_msg_id := private.queue_send('mx_ingest', pg_catalog.jsonb_build_object('event_id', v_event.id));
        update app.webhook_events as e
        set status = 'queued', attempts = 0, last_error = null, processed_at = null, msg_id = v_msg_id
        where e.id = v_event.id;
        insert into app.event_replays (
            event_id, practice_id, replayed_by, actor_user_id, previous_status, previous_attempts,
            previous_error, msg_id
        )
        values (
            v_event.id, v_event.practice_id, p_replayed_by, p_actor_user_id, v_event.status,
            v_event.attempts, v_event.last_error, v_msg_id
        );
        v_replayed := v_replayed || v_event.id;
        event_id := v_event.id;
        outcome := 'replayed';
        previous_status := v_event.status;
        msg_id := v_msg_id;
        return next;
    end loop;

    -- ids that matched no event
    return query
    select r.id, 'not_found'::text, null::text, null::bigint
    from unnest(p_event_ids) as r (id)
    where not exists (select from app.webhook_events as e where e.id = r.id);

    if cardinality(v_replayed) = 0 then
        return;
    end if;

    -- Remove the replayed events' dead letters: read every visible DLQ message (hidden for a
    -- moment), delete the matching ones, make the others visible again at once.
    loop
        v_batch := 0;
        for v_dlq in select q.msg_id, q.message from private.queue_read('mx_ingest_dlq', 60, 500) as q loop
            v_batch := v_batch + 1;
            if (v_dlq.message ->> 'event_id')::bigint = any(v_replayed) then
                perform private.queue_delete('mx_ingest_dlq', v_dlq.msg_id);
                v_removed := pg_catalog.jsonb_set(
                    v_removed, array[v_dlq.message ->> 'event_id'],
                    pg_catalog.to_jsonb(coalesce((v_removed ->> (v_dlq.message ->> 'event_id'))::integer, 0) + 1)
                );
            else
                perform private.queue_set_visibility('mx_ingest_dlq', v_dlq.msg_id, 0);
            end if;
        end loop;
        exit when v_batch < 500;
    end loop;

    update app.event_replays as r
    set dlq_messages_removed = (v_removed ->> r.event_id::text)::integer
    where r.event_id = any(v_replayed)
        and r.replayed_at = now()
        and v_removed ? r.event_id::text;
end
$$;
comment on function private.replay_events(bigint[], text, uuid, text[]) is
'Requeue events (status queued, attempts 0, error kept in app.event_replays) and remove their '
'dead letters from mx_ingest_dlq, in one transaction.';

create function private.dead_letter_ids_since(
    p_since timestamptz, p_mx_merchant_id bigint default null, p_reason_contains text default null
)
returns bigint[]
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(array_agg(e.id order by e.id), '{}')
    from app.webhook_events as e
    where e.status = 'dead'
        and e.processed_at >= p_since
        and (p_mx_merchant_id is null or e.mx_merchant_id = p_mx_merchant_id)
        and (p_reason_contains is null or strpos(lower(e.last_error), lower(p_reason_contains)) > 0)
$$;
comment on function private.dead_letter_ids_since(timestamptz, bigint, text) is
'Operator: ids of the events dead since a time, optionally of one merchant and with a reason containing a text.';

-- ---------------------------------------------------------------------------
-- Status
-- ---------------------------------------------------------------------------
-- The last reconciliation of an account, from app.sync_runs when that table exists (it is
-- created by a later migration, with the reconciliation work): the newest run of kind
-- 'reconcile' as {status, at}. Dynamic SQL, so this function does not need the table to exist.
create function private.last_sync_run(p_merchant_account_id uuid)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_run jsonb;
begin
    if pg_catalog.to_regclass('app.sync_runs') is null then
        return null;
    end if;
    execute $q$
        select pg_catalog.jsonb_build_object(
            'status', s.status, 'at', coalesce(s.finished_at, s.started_at), 'error', s.error
        )
        from app.sync_runs as s
        where s.merchant_account_id = $1 and s.kind = 'reconcile'
        order by s.started_at desc
        limit 1
    $q$ into v_run using p_merchant_account_id;
    return v_run;
end
$$;
comment on function private.last_sync_run(uuid) is
'The newest reconciliation run of an account as {status, at, error}; null when none or when '
'app.sync_runs does not exist.';

create function private.operator_status()
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
    select pg_catalog.jsonb_build_object(
        'ingest', (
            select pg_catalog.jsonb_build_object(
                'depth', m.queue_length, 'oldest_age_seconds', m.oldest_msg_age_sec
            )
            from private.queue_metrics('mx_ingest') as m
        ),
        'dead_letters', (
            select pg_catalog.jsonb_build_object('depth', m.queue_length, 'oldest_age_seconds', m.oldest_msg_age_sec)
            from private.queue_metrics('mx_ingest_dlq') as m
        ),
        'events_last_24h', coalesce((
            select pg_catalog.jsonb_object_agg(s.status, s.n order by s.status)
            from (
                select e.status, count(*) as n
                from app.webhook_events as e
                where e.received_at >= now() - interval '24 hours'
                group by e.status
            ) as s
        ), '{}'),
        'merchants', coalesce((
            select pg_catalog.jsonb_agg(
                pg_catalog.jsonb_build_object(
                    'mx_merchant_id', m.mx_merchant_id,
                    'practice', p.slug,
                    'name', m.name,
                    'is_active', m.is_active,
                    'last_event_at', (
                        select max(e.received_at) from app.webhook_events as e
                        where e.merchant_account_id = m.id
                    ),
                    'credentials_failing_since', m.credentials_failed_at,
                    'credentials_error', m.credentials_error,
                    'last_reconcile', private.last_sync_run(m.id)
                )
                order by p.slug, m.mx_merchant_id
            )
            from app.merchant_accounts as m
            inner join app.practices as p on p.id = m.practice_id
        ), '[]')
    )
$$;
comment on function private.operator_status() is
'Operator: queue depths and ages, events by status in the last 24 hours, and per merchant the '
'last event, failing credentials and last reconciliation.';
