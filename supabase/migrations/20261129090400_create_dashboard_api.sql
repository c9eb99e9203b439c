-- The dashboard API: membership list (filters, search, keyset pagination), tab counts,
-- practice metrics, patient detail, CSV export; the indexes that serve them; realtime.
-- The patient's name key is copied onto memberships (kept current by triggers) so that
-- the list's name sort, name search and keyset all run on one index of one table.

-- pg_trgm serves the patient-name search; Supabase has it. A Postgres without it (the
-- embedded one `make demo` falls back to) still searches, without the index.
do $trgm$
begin
    if exists (select from pg_catalog.pg_available_extensions where name = 'pg_trgm') then
        create extension if not exists pg_trgm with schema extensions;
    else
        raise notice 'pg_trgm is not available: patient-name search runs without its index';
    end if;
end
$trgm$;

alter table app.memberships add column patient_name_key text not null default '';
comment on column app.memberships.patient_name_key is
'Copy of the patient''s name key (triggers keep it current): sort, search and keyset of the list.';

update app.memberships as m set patient_name_key = p.name_key
from app.patients as p
where p.id = m.patient_id;

create function private.set_membership_patient_name_key()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    select p.name_key into new.patient_name_key from app.patients as p where p.id = new.patient_id;
    new.patient_name_key := coalesce(new.patient_name_key, '');
    return new;
end
$$;
comment on function private.set_membership_patient_name_key() is
'Trigger: copy the patient''s name key onto a membership.';

create trigger memberships_patient_name_key
before insert or update of patient_id on app.memberships
for each row execute function private.set_membership_patient_name_key();

create function private.propagate_patient_name_key()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
    update app.memberships set patient_name_key = new.name_key
    where patient_id = new.id and patient_name_key is distinct from new.name_key;
    return null;
end
$$;
comment on function private.propagate_patient_name_key() is
'Trigger: a renamed patient''s memberships follow (name sort and search).';

create trigger patients_propagate_name_key
after update of name on app.patients
for each row execute function private.propagate_patient_name_key();

-- ---------------------------------------------------------------------------
-- Indexes (intended plans in docs/memberships.md)
-- ---------------------------------------------------------------------------
create index memberships_practice_name_idx on app.memberships (practice_id, patient_name_key, id);
create index memberships_practice_category_name_idx
on app.memberships (practice_id, category_id, patient_name_key, id);
create index memberships_practice_started_idx
on app.memberships (practice_id, (coalesce(started_on, '-infinity'::date)), id);
create index memberships_practice_last_paid_idx
on app.memberships (practice_id, (coalesce(last_paid_at, '-infinity'::timestamptz)), id);
do $trgm_index$
begin
    if exists (select from pg_catalog.pg_extension where extname = 'pg_trgm') then
        create index memberships_name_trgm_idx on app.memberships
        using gin (patient_name_key extensions.gin_trgm_ops);
    end if;
end
$trgm_index$;
create index membership_events_membership_evidence_idx
on app.membership_events (membership_id, evidence_at desc, id desc);
create index membership_events_practice_evidence_idx on app.membership_events (practice_id, evidence_at);

-- ---------------------------------------------------------------------------
-- The list
-- ---------------------------------------------------------------------------
-- p_tab: 'all' | a programme id | 'cancellations' (paused and canceled).
-- p_sort: name | started_on | last_paid_at, optionally followed by .asc / .desc (or a space).
-- Missing dates sort as the oldest. p_after: the cursor of the last row of the previous page.
create function api.list_memberships(
    p_practice_id uuid,
    p_tab text default 'all',
    p_status text[] default null,
    p_google_review boolean default null,
    p_referral_source text default null,
    p_fulfillment text default null,
    p_started_from date default null,
    p_started_to date default null,
    p_search text default null,
    p_sort text default 'name',
    p_after jsonb default null,
    p_limit integer default 50
)
returns table (
    id uuid,
    practice_id uuid,
    patient_id uuid,
    patient_name text,
    category_id uuid,
    category_name text,
    status text,
    status_source text,
    status_changed_at timestamptz,
    started_on date,
    last_paid_at timestamptz,
    next_billing_on date,
    canceled_at timestamptz,
    amount numeric,
    billing_interval text,
    product_names text[],
    google_review_submitted boolean,
    google_review_at timestamptz,
    referral_source text,
    fulfillment text,
    notes text,
    cursor jsonb
)
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
    v_field text := lower(split_part(regexp_replace(trim(coalesce(p_sort, 'name')), '[ :]+', '.'), '.', 1));
    v_dir text := lower(coalesce(nullif(split_part(regexp_replace(trim(coalesce(p_sort, 'name')), '[ :]+', '.'), '.', 2), ''), 'asc'));
    v_key text;
    v_type text;
    v_where text := 'm.practice_id = $1';
    v_category uuid;
    v_pattern text;
    v_limit integer := least(greatest(coalesce(p_limit, 50), 1), 1000);
begin
    v_key := case v_field
        when 'name' then 'm.patient_name_key'
        when 'started_on' then 'coalesce(m.started_on, ''-infinity''::date)'
        when 'last_paid_at' then 'coalesce(m.last_paid_at, ''-infinity''::timestamptz)'
    end;
    v_type := case v_field when 'name' then 'text' when 'started_on' then 'date' else 'timestamptz' end;
    if v_key is null or v_dir not in ('asc', 'desc') then
        raise exception 'p_sort must be name, started_on or last_paid_at, then asc or desc' using errcode = '22023';
    end if;

    if coalesce(p_tab, 'all') = 'cancellations' then
        v_where := v_where || ' and m.status in (''paused'', ''canceled'')';
    elsif coalesce(p_tab, 'all') <> 'all' then
        begin
            v_category := p_tab::uuid;
        exception when invalid_text_representation then
            raise exception 'p_tab must be all, cancellations or a programme id' using errcode = '22023';
        end;
        v_where := v_where || ' and m.category_id = $2';
    end if;
    if p_status is not null then
        v_where := v_where || ' and m.status = any($3)';
    end if;
    if p_google_review is not null then
        v_where := v_where || ' and m.google_review_submitted = $4';
    end if;
    if p_referral_source is not null then
        v_where := v_where || ' and m.referral_source = $5';
    end if;
    if p_fulfillment is not null then
        v_where := v_where || ' and m.fulfillment = $6';
    end if;
    if p_started_from is not null then
        v_where := v_where || ' and m.started_on >= $7';
    end if;
    if p_started_to is not null then
        v_where := v_where || ' and m.started_on <= $8';
    end if;
    if nullif(trim(p_search), '') is not null then
        v_pattern := '%' || replace(replace(replace(
            lower(regexp_replace(trim(p_search), '\s+', ' ', 'g')), '\', '\\'), '%', '\%'), '_', '\_') || '%';
        v_where := v_where || ' and m.patient_name_key like $9';
    end if;
    if p_after is not null then
        v_where := v_where || format(
            ' and (%s, m.id) %s (($10 ->> ''k'')::%s, ($10 ->> ''id'')::uuid)',
            v_key, case v_dir when 'asc' then '>' else '<' end, v_type
        );
    end if;

    return query execute format(
        $q$
        select
            m.id, m.practice_id, m.patient_id, pt.name, m.category_id, c.name, m.status,
            m.status_source, m.status_changed_at, m.started_on, m.last_paid_at, m.next_billing_on,
            m.canceled_at, m.amount::numeric, m.billing_interval, m.product_names,
            m.google_review_submitted, m.google_review_at, m.referral_source, m.fulfillment, m.notes,
            jsonb_build_object('k', %1$s, 'id', m.id)
        from app.memberships as m
        inner join app.patients as pt on pt.id = m.patient_id
        inner join app.categories as c on c.id = m.category_id
        where %2$s
        order by %1$s %3$s, m.id %3$s
        limit $11
        $q$,
        v_key, v_where, v_dir
    )
    using p_practice_id, v_category, p_status, p_google_review, p_referral_source, p_fulfillment,
        p_started_from, p_started_to, v_pattern, p_after, v_limit;
end
$$;
comment on function api.list_memberships(
    uuid, text, text[], boolean, text, text, date, date, text, text, jsonb, integer
) is
'Memberships of a practice for the dashboard: tab, filters, name search, sort, keyset page (cursor).';
grant execute on function api.list_memberships(
    uuid, text, text[], boolean, text, text, date, date, text, text, jsonb, integer
) to authenticated;

-- ---------------------------------------------------------------------------
-- Tab counts
-- ---------------------------------------------------------------------------
create function api.membership_tab_counts(p_practice_id uuid)
returns table (tab text, category_id uuid, label text, sort_order integer, member_count bigint)
language sql
stable
security invoker
set search_path = ''
as $$
    with per_category as (
        select m.category_id, count(*) as n, count(*) filter (where m.status in ('paused', 'canceled')) as cancels
        from app.memberships as m
        where m.practice_id = p_practice_id
        group by m.category_id
    )
    select 'all', null::uuid, 'All', 0, coalesce(sum(pc.n), 0)::bigint
    from per_category as pc
    union all
    select c.id::text, c.id, c.name, c.sort_order, coalesce(pc.n, 0)
    from app.categories as c
    left join per_category as pc on pc.category_id = c.id
    where c.practice_id = p_practice_id
    union all
    select 'cancellations', null::uuid, 'Cancellations', 100000, coalesce(sum(pc.cancels), 0)::bigint
    from per_category as pc
    order by 4, 3
$$;
comment on function api.membership_tab_counts(uuid) is
'One row per dashboard tab (All, each programme, Cancellations) with its membership count.';
grant execute on function api.membership_tab_counts(uuid) to authenticated;

-- ---------------------------------------------------------------------------
-- Metrics (definitions in docs/memberships.md). Period: p_from 00:00 to p_to 24:00 in the
-- practice's time zone. One row per programme plus a total row (category_id null).
-- ---------------------------------------------------------------------------
create function api.practice_metrics(p_practice_id uuid, p_from date, p_to date)
returns table (
    category_id uuid,
    category_name text,
    active_at_start bigint,
    active_at_end bigint,
    past_due_at_end bigint,
    mrr numeric,
    new_members bigint,
    canceled bigint,
    reactivated bigint,
    churn_rate numeric
)
language sql
stable
security invoker
set search_path = ''
as $$
    with bounds as (
        select
            (p_from::timestamp at time zone p.timezone) as t0,
            ((p_to + 1)::timestamp at time zone p.timezone) as t1,
            p.timezone
        from app.practices as p
        where p.id = p_practice_id
    ),
    ms as (
        select
            m.category_id,
            -- monthly-normalised amount: the same table as docs/memberships.md
            round(coalesce(m.amount, 0) * case lower(coalesce(trim(m.billing_interval), ''))
                when 'daily' then 365.0 / 12
                when 'weekly' then 52.0 / 12
                when 'biweekly' then 26.0 / 12
                when 'quarterly' then 1.0 / 3
                when 'semiannually' then 1.0 / 6
                when 'yearly' then 1.0 / 12
                when 'annually' then 1.0 / 12
                when 'annual' then 1.0 / 12
                else 1
            end, 2) as monthly,
            (
                select e.new_status from app.membership_events as e
                where e.membership_id = m.id and e.evidence_at < b.t0
                order by e.evidence_at desc, e.id desc limit 1
            ) as status_start,
            (
                select e.new_status from app.membership_events as e
                where e.membership_id = m.id and e.evidence_at < b.t1
                order by e.evidence_at desc, e.id desc limit 1
            ) as status_end,
            least(
                (m.started_on::timestamp at time zone b.timezone),
                (
                    select min(e.evidence_at) from app.membership_events as e
                    where e.membership_id = m.id and e.new_status = 'active'
                )
            ) as first_active_at,
            exists (
                select from app.membership_events as e
                where e.membership_id = m.id and e.new_status = 'canceled'
                    and e.evidence_at >= b.t0 and e.evidence_at < b.t1
            ) as canceled_in,
            exists (
                select from app.membership_events as e
                where e.membership_id = m.id and e.new_status = 'active'
                    and e.old_status in ('canceled', 'paused')
                    and e.evidence_at >= b.t0 and e.evidence_at < b.t1
            ) as reactivated_in,
            b.t0,
            b.t1
        from app.memberships as m
        cross join bounds as b
        where m.practice_id = p_practice_id
    )
    select
        c.id,
        coalesce(c.name, 'All'),
        count(*) filter (where ms.status_start = 'active'),
        count(*) filter (where ms.status_end = 'active'),
        count(*) filter (where ms.status_end = 'past_due'),
        coalesce(sum(ms.monthly) filter (where ms.status_end in ('active', 'past_due')), 0)::numeric(12, 2),
        count(*) filter (where ms.first_active_at >= ms.t0 and ms.first_active_at < ms.t1),
        count(*) filter (where ms.canceled_in),
        count(*) filter (where ms.reactivated_in),
        round(
            (count(*) filter (where ms.canceled_in))::numeric
            / nullif(count(*) filter (where ms.status_start = 'active'), 0),
            4
        )
    from app.categories as c
    left join ms on ms.category_id = c.id
    where c.practice_id = p_practice_id
        and (c.kind = 'programme' or ms.category_id is not null)
    group by grouping sets ((c.id, c.name, c.sort_order), ())
    order by grouping(c.id), c.sort_order, c.name
$$;
comment on function api.practice_metrics(uuid, date, date) is
'Per programme and in total: active at start and end, past due at end, MRR, new, canceled, '
'reactivated, churn rate over [p_from, p_to] in the practice''s time zone.';
grant execute on function api.practice_metrics(uuid, date, date) to authenticated;

-- ---------------------------------------------------------------------------
-- Patient detail
-- ---------------------------------------------------------------------------
create function api.patient_detail(p_patient_id uuid)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
    select jsonb_build_object(
        'patient', to_jsonb(p),
        'memberships', coalesce((
            select jsonb_agg(to_jsonb(m) order by m.category_name)
            from api.memberships as m where m.patient_id = p.id
        ), '[]'),
        'payments', coalesce((
            select jsonb_agg(to_jsonb(pay) order by pay.mx_created_at desc, pay.id desc)
            from api.payments as pay where pay.patient_id = p.id
        ), '[]'),
        'invoices', coalesce((
            select jsonb_agg(
                to_jsonb(i) || jsonb_build_object('lines', coalesce((
                    select jsonb_agg(to_jsonb(l) order by l.line_no)
                    from api.invoice_lines as l where l.invoice_id = i.id
                ), '[]'))
                order by i.invoice_date desc nulls last, i.id desc
            )
            from api.invoices as i where i.patient_id = p.id
        ), '[]')
    )
    from api.patients as p
    where p.id = p_patient_id
$$;
comment on function api.patient_detail(uuid) is
'One patient with memberships, payments and invoices (with lines); null when not visible.';
grant execute on function api.patient_detail(uuid) to authenticated;

-- ---------------------------------------------------------------------------
-- CSV export
-- ---------------------------------------------------------------------------
create function api.export_memberships_csv(
    p_practice_id uuid,
    p_tab text default 'all',
    p_status text[] default null,
    p_google_review boolean default null,
    p_referral_source text default null,
    p_fulfillment text default null,
    p_started_from date default null,
    p_started_to date default null,
    p_search text default null,
    p_sort text default 'name'
)
returns text
language plpgsql
stable
security invoker
set search_path = ''
as $$
declare
    v_page constant integer := 1000;
    v_after jsonb;
    v_rows integer;
    v_chunk text;
    v_out text := 'patient_name,programme,status,started_on,last_paid_at,next_billing_on,amount,'
        || 'billing_interval,products,google_review_submitted,referral_source,fulfillment,notes' || e'\r\n';
begin
    loop
        select
            count(*),
            string_agg(
                (
                    select string_agg(
                        case
                            when f.v is null then ''
                            when f.v ~ '[",\r\n]' or f.v <> trim(f.v) then '"' || replace(f.v, '"', '""') || '"'
                            else f.v
                        end,
                        ',' order by f.n
                    )
                    from unnest(array[
                        l.patient_name, l.category_name, l.status, l.started_on::text, l.last_paid_at::text,
                        l.next_billing_on::text, l.amount::text, l.billing_interval,
                        array_to_string(l.product_names, '; '), l.google_review_submitted::text,
                        l.referral_source, l.fulfillment, l.notes
                    ]) with ordinality as f (v, n)
                ) || e'\r\n',
                '' order by l.ord
            ),
            (array_agg(l.cursor order by l.ord desc))[1]
        into v_rows, v_chunk, v_after
        from api.list_memberships(
            p_practice_id, p_tab, p_status, p_google_review, p_referral_source, p_fulfillment,
            p_started_from, p_started_to, p_search, p_sort, v_after, v_page
        ) with ordinality as l (
            id, practice_id, patient_id, patient_name, category_id, category_name, status, status_source,
            status_changed_at, started_on, last_paid_at, next_billing_on, canceled_at, amount,
            billing_interval, product_names, google_review_submitted, google_review_at, referral_source,
            fulfillment, notes, cursor, ord
        );
        v_out := v_out || coalesce(v_chunk, '');
        exit when v_rows < v_page;
    end loop;
    return v_out;
end
$$;
comment on function api.export_memberships_csv(uuid, text, text[], boolean, text, text, date, date, text, text) is
'The membership list (same filters and sort) as CSV with a header row, every row, RFC 4180 quoting.';
grant execute on function api.export_memberships_csv(
    uuid, text, text[], boolean, text, text, date, date, text, text
) to authenticated;

-- ---------------------------------------------------------------------------
-- Realtime: the dashboard listens to memberships and payments where the platform has it
-- ---------------------------------------------------------------------------
do $realtime$
declare
    v_table text;
begin
    if exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
        foreach v_table in array array['memberships', 'payments'] loop
            if not exists (
                select from pg_catalog.pg_publication_tables
                where pubname = 'supabase_realtime' and schemaname = 'app' and tablename = v_table
            ) then
                execute format('alter publication supabase_realtime add table app.%I', v_table);
            end if;
        end loop;
    end if;
end
$realtime$;
