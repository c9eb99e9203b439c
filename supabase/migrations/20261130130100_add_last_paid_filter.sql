-- The dashboard's "last payment between" filter: api.list_memberships and
-- api.export_memberships_csv take p_last_paid_from / p_last_paid_to (dates, whole days in the
-- practice's time zone), appended after their existing parameters with null defaults, so every
-- existing call (positional or named) means what it meant. Both are dropped and created again
-- (a new parameter changes the signature; a second overload would make named calls
-- ambiguous). The bodies are the current ones with the new condition: list_memberships as in
-- 20261130120300 (members only unless p_status asks for one_time), export_memberships_csv as
-- in 20261130110200 (every field through api.csv_cell).

drop function api.export_memberships_csv(uuid, text, text[], boolean, text, text, date, date, text, text);
drop function api.list_memberships(uuid, text, text[], boolean, text, text, date, date, text, text, jsonb, integer);

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
    p_limit integer default 50,
    p_last_paid_from date default null,
    p_last_paid_to date default null
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
set search_path = pg_catalog, pg_temp
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
    v_timezone text;
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
    else
        v_where := v_where || ' and m.status <> ''one_time''';
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
    if p_last_paid_from is not null or p_last_paid_to is not null then
        -- whole days in the practice's time zone (RLS: an unknown practice has no zone, no rows)
        select p.timezone into v_timezone from app.practices as p where p.id = p_practice_id;
        v_timezone := coalesce(v_timezone, 'UTC');
    end if;
    if p_last_paid_from is not null then
        v_where := v_where || ' and m.last_paid_at >= ($12::timestamp at time zone $14)';
    end if;
    if p_last_paid_to is not null then
        v_where := v_where || ' and m.last_paid_at < (($13 + 1)::timestamp at time zone $14)';
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
        p_started_from, p_started_to, v_pattern, p_after, v_limit, p_last_paid_from, p_last_paid_to,
        v_timezone;
end
$$;
comment on function api.list_memberships(
    uuid, text, text[], boolean, text, text, date, date, text, text, jsonb, integer, date, date
) is
'Memberships of a practice for the dashboard: tab, filters (last paid between: whole days in the practice''s time zone), name search, sort, keyset page (cursor). '
'One-time purchases only when p_status asks for one_time.';
grant execute on function api.list_memberships(
    uuid, text, text[], boolean, text, text, date, date, text, text, jsonb, integer, date, date
) to authenticated;

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
    p_sort text default 'name',
    p_last_paid_from date default null,
    p_last_paid_to date default null
)
returns text
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
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
                    select string_agg(api.csv_cell(f.v), ',' order by f.n)
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
            p_started_from, p_started_to, p_search, p_sort, v_after, v_page,
            p_last_paid_from, p_last_paid_to
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
comment on function api.export_memberships_csv(uuid, text, text[], boolean, text, text, date, date, text, text, date, date) is
'The membership list (same filters and sort) as CSV with a header row, every row, RFC 4180 quoting; '
'every field through api.csv_cell (no cell a spreadsheet runs as a formula).';
grant execute on function api.export_memberships_csv(
    uuid, text, text[], boolean, text, text, date, date, text, text, date, date
) to authenticated;
