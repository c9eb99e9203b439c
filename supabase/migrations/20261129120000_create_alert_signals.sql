-- Observability and alerting: queue depths for the worker's metrics, the numbers the alert
-- checks need in one call, and the alert log that de-duplicates deliveries across processes.

-- ---------------------------------------------------------------------------
-- Queue depths (worker metrics gauges)
-- ---------------------------------------------------------------------------
create function private.queue_depths()
returns table (queue_name text, queue_length bigint, oldest_msg_age_sec integer, total_messages bigint)
language sql
stable
security definer
set search_path = ''
as $$
    select q.name, m.queue_length, m.oldest_msg_age_sec, m.total_messages
    from unnest(array['mx_ingest', 'mx_ingest_dlq']) as q (name)
    cross join lateral private.queue_metrics(q.name) as m
$$;
comment on function private.queue_depths() is
'Worker metrics: depth, oldest message age and total sent of the ingest queue and its dead-letter queue.';

-- ---------------------------------------------------------------------------
-- Alert log: one row per (alert key, channel); the last claim is the last delivery
-- ---------------------------------------------------------------------------
create table app.alert_log (
    alert_key text not null,
    channel text not null,
    kind text not null,
    -- when the last delivery was claimed (-infinity: never delivered, or the last one failed)
    claimed_at timestamptz not null,
    previous_claimed_at timestamptz,
    message text not null default '',
    send_count integer not null default 0,
    failure_count integer not null default 0,
    last_error text,
    primary key (alert_key, channel)
);
comment on table app.alert_log is
'Alert deliveries by key and channel: the same key is not sent again on a channel within the repeat window.';

alter table app.alert_log enable row level security;
-- No client grant and no policy: only the alert procedures below touch it.

-- Events of one merchant in time order, for the silence check.
create index webhook_events_merchant_received_idx on app.webhook_events (merchant_account_id, received_at desc)
where origin = 'webhook';

-- Claim the right to deliver an alert on a channel. True when this caller must send it: the
-- key was never sent on this channel, or its last delivery is older than the repeat window.
-- Concurrent callers serialize on the row: exactly one of them gets true.
create function private.alert_claim(
    p_alert_key text, p_channel text, p_kind text, p_message text, p_repeat_minutes integer
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_claimed boolean;
begin
    insert into app.alert_log as l (alert_key, channel, kind, claimed_at, message, send_count)
    values (p_alert_key, p_channel, p_kind, now(), left(p_message, 4000), 1)
    on conflict (alert_key, channel) do update
    set previous_claimed_at = l.claimed_at,
        claimed_at = now(),
        kind = excluded.kind,
        message = excluded.message,
        send_count = l.send_count + 1
    where l.claimed_at <= now() - make_interval(mins => greatest(p_repeat_minutes, 0))
    returning true into v_claimed;
    return coalesce(v_claimed, false);
end
$$;
comment on function private.alert_claim(text, text, text, text, integer) is
'Alerts: claim one delivery of a key on a channel unless it was sent within p_repeat_minutes.';

-- A claimed delivery failed: put the claim back so the next check tries again.
create function private.alert_release(p_alert_key text, p_channel text, p_error text)
returns void
language sql
security definer
set search_path = ''
as $$
    update app.alert_log
    set claimed_at = coalesce(previous_claimed_at, '-infinity'),
        previous_claimed_at = null,
        send_count = greatest(send_count - 1, 0),
        failure_count = failure_count + 1,
        last_error = left(p_error, 2000)
    where alert_key = p_alert_key and channel = p_channel
$$;
comment on function private.alert_release(text, text, text) is
'Alerts: a delivery failed; the key becomes due again on that channel.';

-- ---------------------------------------------------------------------------
-- The numbers every alert check needs, in one call
-- ---------------------------------------------------------------------------
-- "since": the earliest last delivery of a key over its channels (a channel whose delivery
-- failed keeps it early, so that channel still hears about what happened), or p_lookback ago.
create function private.alert_since(p_alert_key text, p_lookback interval)
returns timestamptz
language sql
stable
security definer
set search_path = ''
as $$
    select greatest(
        coalesce(min(l.claimed_at), '-infinity'),
        now() - p_lookback
    )
    from app.alert_log as l
    where l.alert_key = p_alert_key
$$;
comment on function private.alert_since(text, interval) is
'Alerts: the last delivery of a key (earliest over its channels), bounded by a lookback.';

-- Reconciliation runs (app.sync_runs, created by the reconciliation work) since the last
-- reconcile alert. The table is optional: without it the answer is {"available": false}.
-- Its gap count is the first of these columns that exists: missed_count, queued_count,
-- found_count, gaps_found, missing_count, missed, queued, found; its time column the first of
-- finished_at, completed_at, ended_at, started_at, created_at; a status column, when present,
-- counts runs with status 'failed'; a kind column limits it to kind 'reconcile' (a backfill's
-- queued payments are not missed webhooks).
create function private.alert_reconcile_signals(p_since timestamptz)
returns jsonb
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
    v_table regclass := to_regclass('app.sync_runs');
    v_count_col text;
    v_time_col text;
    v_has_status boolean;
    v_has_kind boolean;
    v_result jsonb;
begin
    if v_table is null then
        return jsonb_build_object('available', false);
    end if;
    select c.name into v_count_col
    from unnest(array[
        'missed_count', 'queued_count', 'found_count', 'gaps_found', 'missing_count', 'missed', 'queued',
        'found'
    ]) with ordinality as c (name, pos)
    where exists (
        select from pg_catalog.pg_attribute as a
        where a.attrelid = v_table and a.attname = c.name and not a.attisdropped and a.attnum > 0
    )
    order by c.pos
    limit 1;
    select c.name into v_time_col
    from unnest(array['finished_at', 'completed_at', 'ended_at', 'started_at', 'created_at'])
        with ordinality as c (name, pos)
    where exists (
        select from pg_catalog.pg_attribute as a
        where a.attrelid = v_table and a.attname = c.name and not a.attisdropped and a.attnum > 0
    )
    order by c.pos
    limit 1;
    v_has_status := exists (
        select from pg_catalog.pg_attribute as a
        where a.attrelid = v_table and a.attname = 'status' and not a.attisdropped
    );
    v_has_kind := exists (
        select from pg_catalog.pg_attribute as a
        where a.attrelid = v_table and a.attname = 'kind' and not a.attisdropped
    );
    if v_count_col is null or v_time_col is null then
        return jsonb_build_object(
            'available', false, 'reason', 'app.sync_runs has no recognised count or time column'
        );
    end if;
    execute format(
        $sql$
            select jsonb_build_object(
                'available', true,
                'count_column', %1$L,
                'time_column', %2$L,
                'runs_with_gaps', count(*) filter (where coalesce(r.%1$I, 0) > 0),
                'gaps', coalesce(sum(r.%1$I) filter (where coalesce(r.%1$I, 0) > 0), 0),
                'failed_runs', %3$s,
                'latest_gap_at', max(r.%2$I) filter (where coalesce(r.%1$I, 0) > 0)
            )
            from app.sync_runs as r
            where r.%2$I > $1 and %4$s
        $sql$,
        v_count_col,
        v_time_col,
        case when v_has_status then $s$count(*) filter (where r.status::text = 'failed')$s$ else '0' end,
        case when v_has_kind then $s$r.kind::text = 'reconcile'$s$ else 'true' end
    )
    using p_since
    into v_result;
    return v_result;
end
$$;
comment on function private.alert_reconcile_signals(timestamptz) is
'Alerts: reconciliation runs since p_since that found missed webhooks or failed (app.sync_runs optional).';

-- Silence: a merchant with no webhook for longer than max(p_silence_min_hours, p_silence_factor
-- x its usual gap). Its usual gap is the 95th percentile of the gaps between its last 2000
-- webhooks (at least 5 gaps, else only the minimum applies). Merchants that never sent a
-- webhook are not reported.
create function private.alert_signals(
    p_silence_min_hours double precision default 24,
    p_silence_factor double precision default 3
)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
    with queues as (
        select
            jsonb_object_agg(
                q.queue_name,
                jsonb_build_object(
                    'depth', q.queue_length,
                    'oldest_age_seconds', q.oldest_msg_age_sec,
                    'total_messages', q.total_messages
                )
            ) as data
        from private.queue_depths() as q
    ),

    dead_since as (
        select private.alert_since('dead_letters', interval '24 hours') as at
    ),

    dead as (
        select jsonb_build_object(
            'since', (select ds.at from dead_since as ds),
            'new', count(*),
            'latest', coalesce(
                (
                    select jsonb_agg(x.item order by x.processed_at desc)
                    from (
                        select
                            e2.processed_at,
                            jsonb_build_object(
                                'event_id', e2.id, 'mx_merchant_id', e2.mx_merchant_id,
                                'payment_id', e2.payment_id, 'reason', left(e2.last_error, 300)
                            ) as item
                        from app.webhook_events as e2
                        where e2.status = 'dead' and e2.processed_at > (select ds.at from dead_since as ds)
                        order by e2.processed_at desc
                        limit 5
                    ) as x
                ),
                '[]'
            )
        ) as data
        from app.webhook_events as e
        where e.status = 'dead' and e.processed_at > (select ds.at from dead_since as ds)
    ),

    credentials as (
        select coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'merchant_account_id', m.id, 'mx_merchant_id', m.mx_merchant_id, 'name', m.name,
                    'failed_at', m.credentials_failed_at, 'error', left(m.credentials_error, 300)
                )
                order by m.credentials_failed_at
            ),
            '[]'
        ) as data
        from app.merchant_accounts as m
        where m.is_active and m.credentials_failed_at is not null
    ),

    history as (
        select
            m.id,
            m.mx_merchant_id,
            m.name,
            h.received_at,
            extract(epoch from h.received_at - lag(h.received_at) over (
                partition by m.id order by h.received_at
            )) as gap_seconds
        from app.merchant_accounts as m
        cross join lateral (
            select e.received_at
            from app.webhook_events as e
            where e.merchant_account_id = m.id and e.origin = 'webhook'
            order by e.received_at desc
            limit 2000
        ) as h
        where m.is_active
    ),

    usual as (
        select
            h.id,
            h.mx_merchant_id,
            h.name,
            max(h.received_at) as last_event_at,
            count(h.gap_seconds) as gaps,
            percentile_cont(0.95) within group (order by h.gap_seconds) as usual_gap_seconds
        from history as h
        group by h.id, h.mx_merchant_id, h.name
    ),

    silent as (
        select coalesce(
            jsonb_agg(
                jsonb_build_object(
                    'merchant_account_id', s.id, 'mx_merchant_id', s.mx_merchant_id, 'name', s.name,
                    'last_event_at', s.last_event_at,
                    'silent_hours', round((s.silent_seconds / 3600)::numeric, 1),
                    'usual_gap_hours', round((s.usual_gap_seconds / 3600)::numeric, 1),
                    'threshold_hours', round((s.threshold_seconds / 3600)::numeric, 1)
                )
                order by s.mx_merchant_id
            ),
            '[]'
        ) as data
        from (
            select
                u.*,
                extract(epoch from now() - u.last_event_at) as silent_seconds,
                greatest(
                    p_silence_min_hours * 3600,
                    case when u.gaps >= 5 then p_silence_factor * u.usual_gap_seconds else 0 end
                ) as threshold_seconds
            from usual as u
        ) as s
        where s.silent_seconds > s.threshold_seconds
    )

    select jsonb_build_object(
        'checked_at', now(),
        'queues', (select q.data from queues as q),
        'dead_letters', (select d.data from dead as d),
        'credentials_failed', (select c.data from credentials as c),
        'silent_merchants', (select s.data from silent as s),
        'reconcile', private.alert_reconcile_signals(
            private.alert_since('reconcile_gaps', interval '24 hours')
        )
    )
$$;
comment on function private.alert_signals(double precision, double precision) is
'Alerts: queue depths, new dead letters, failing credentials, silent merchants and reconciliation gaps, '
'in one call.';

grant execute on function private.queue_depths() to mx_worker;
grant execute on function private.alert_signals(double precision, double precision) to mx_worker;
grant execute on function private.alert_claim(text, text, text, text, integer) to mx_worker;
grant execute on function private.alert_release(text, text, text) to mx_worker;
