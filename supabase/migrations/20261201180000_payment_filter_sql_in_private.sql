-- api.payment_filter_sql returned the SQL text behind api.list_payments and api.payment_totals:
-- a helper, not an API, yet callable over PostgREST like everything in `api`. It moves to
-- `private` (same body; executable by `authenticated`, as the two invoker functions run as the
-- caller) and the two callers call it there. Behaviour unchanged.

create function private.payment_filter_sql(
    p_kind text,
    p_status text,
    p_source text,
    p_category_id uuid,
    p_has_invoice boolean,
    p_from date,
    p_to date,
    p_search text,
    p_recurring boolean
)
returns text
language plpgsql
immutable
set search_path = pg_catalog, pg_temp
as $$
declare
    -- each kind once; a filter on one kind is its own condition, so that the planner can use
    -- payments_practice_declines_refunds_idx for the rare ones
    v_decline constant text := $c$p.status = 'Declined'$c$;
    v_refund constant text := $c$p.type in ('Return', 'Refund') and not p.status = 'Declined'$c$;
    v_sale constant text := $c$p.type in ('Sale', 'SaleCompletion') and p.status in ('Approved', 'Settled')$c$;
    v_kind constant text := format(
        $k$case when %s then 'decline' when %s then 'refund' when %s then 'sale' else 'other' end$k$,
        v_decline, v_refund, v_sale
    );
    v_recurring constant text := $r$
        (p.source = 'Recurring' or exists (select from app.contract_payments as cp where cp.payment_id = p.id))$r$;
    v_where text := 'p.practice_id = $1';
begin
    if p_kind is not null and p_kind not in ('sale', 'refund', 'decline', 'other') then
        raise exception 'p_kind must be sale, refund, decline or other' using errcode = '22023';
    end if;
    if length(p_status) > 64 or length(p_source) > 64 then
        raise exception 'p_status and p_source are at most 64 characters' using errcode = '22023';
    end if;
    if length(p_search) > 100 then
        raise exception 'p_search is at most 100 characters' using errcode = '22023';
    end if;
    if p_from > p_to then
        raise exception 'p_from must not be after p_to' using errcode = '22023';
    end if;

    if p_kind is not null then
        v_where := v_where || ' and ' || case p_kind
            when 'decline' then v_decline
            when 'refund' then '(' || v_refund || ')'
            when 'sale' then '(' || v_sale || ')'
            else v_kind || ' = $2'
        end;
    end if;
    if p_status is not null then
        v_where := v_where || ' and p.status = $3';
    end if;
    if p_source is not null then
        v_where := v_where || ' and p.source = $4';
    end if;
    if p_category_id is not null then
        v_where := v_where || ' and exists (select from app.payment_invoices as pi'
            || ' inner join app.invoice_lines as l on l.invoice_id = pi.invoice_id'
            || ' where pi.payment_id = p.id and l.category_id = $5)';
    end if;
    if p_has_invoice is not null then
        v_where := v_where || case when p_has_invoice then ' and ' else ' and not ' end
            || 'exists (select from app.payment_invoices as pi where pi.payment_id = p.id)';
    end if;
    -- whole days in the practice's time zone ($9, a value, not a subquery: the bounds become
    -- constants of the index range), from the first instant of p_from to the first after p_to
    if p_from is not null then
        v_where := v_where || ' and p.mx_created_at >= ($6::timestamp at time zone $9)';
    end if;
    if p_to is not null then
        v_where := v_where || ' and p.mx_created_at < (($7 + 1)::timestamp at time zone $9)';
    end if;
    -- a name compared as app.patients.name_key is built; %, _ and \ in the search are characters
    if nullif(trim(p_search), '') is not null then
        v_where := v_where || $s$ and p.patient_id in (select s.id from app.patients as s
            where s.practice_id = $1 and s.name_key like '%' || replace(replace(replace(
                lower(regexp_replace(trim($8), '\s+', ' ', 'g')), '\', '\\'), '%', '\%'), '_', '\_') || '%')$s$;
    end if;
    if p_recurring is not null then
        v_where := v_where || case when p_recurring then ' and ' else ' and not ' end || v_recurring;
    end if;

    return format(
        $q$
        select
            p.id, p.practice_id, p.patient_id, coalesce(pt.name, p.customer_name) as patient_name,
            %1$s as kind, p.status, p.type, p.source, %2$s as recurring, p.amount::numeric as amount,
            p.mx_created_at, p.invoice_number, p.card_type, p.card_last4, p.auth_code,
            array(
                select distinct c.name
                from app.payment_invoices as pi
                inner join app.invoice_lines as l on l.invoice_id = pi.invoice_id
                inner join app.categories as c on c.id = l.category_id
                where pi.payment_id = p.id
                order by c.name
            ) as programmes,
            array(
                select pi.invoice_id from app.payment_invoices as pi
                where pi.payment_id = p.id order by pi.invoice_id
            ) as invoice_ids,
            (select min(cp.contract_id) from app.contract_payments as cp where cp.payment_id = p.id)
                as contract_id
        from app.payments as p
        left join app.patients as pt on pt.id = p.patient_id
        where %3$s
        $q$,
        v_kind, v_recurring, v_where
    );
end
$$;
comment on function private.payment_filter_sql(text, text, text, uuid, boolean, date, date, text, boolean) is
'The query behind api.list_payments and api.payment_totals (and so the CSV exports) (one definition of the filter and of sale, refund, decline; no data read): parameters $1 practice, $2 kind, $3 status, $4 source, $5 programme, $6 from, $7 to, $8 search, $9 the practice''s time zone. Checks the values (22023).';
revoke all on function private.payment_filter_sql(text, text, text, uuid, boolean, date, date, text, boolean) from public;
grant execute on function private.payment_filter_sql(text, text, text, uuid, boolean, date, date, text, boolean)
to authenticated;

create or replace function api.list_payments(
    p_practice_id uuid,
    p_kind text default null,
    p_status text default null,
    p_source text default null,
    p_category_id uuid default null,
    p_has_invoice boolean default null,
    p_from date default null,
    p_to date default null,
    p_search text default null,
    p_recurring boolean default null,
    p_after jsonb default null,
    p_limit integer default 50
)
returns table (
    id bigint,
    practice_id uuid,
    patient_id uuid,
    patient_name text,
    kind text,
    status text,
    type text,
    source text,
    recurring boolean,
    amount numeric,
    mx_created_at timestamptz,
    invoice_number text,
    card_type text,
    card_last4 text,
    auth_code text,
    programmes text[],
    invoice_ids bigint[],
    contract_id bigint,
    cursor jsonb
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_sql text := private.payment_filter_sql(
        p_kind, p_status, p_source, p_category_id, p_has_invoice, p_from, p_to, p_search, p_recurring
    );
    v_after_at timestamptz;
    v_after_id bigint;
    v_limit integer := least(greatest(coalesce(p_limit, 50), 1), 1000);
begin
    if p_after is not null then
        begin
            v_after_at := (p_after ->> 't')::timestamptz;
            v_after_id := (p_after ->> 'id')::bigint;
        exception when invalid_text_representation or invalid_datetime_format or datetime_field_overflow
            or numeric_value_out_of_range then
            raise exception 'p_after is not a page cursor' using errcode = '22023';
        end;
        if v_after_at is null or v_after_id is null then
            raise exception 'p_after is not a page cursor' using errcode = '22023';
        end if;
    end if;

    return query execute format(
        $q$
        select f.*, jsonb_build_object('t', f.mx_created_at, 'id', f.id)
        from (%s) as f
        where $10::timestamptz is null or (f.mx_created_at, f.id) < ($10, $11)
        order by f.mx_created_at desc, f.id desc
        limit $12
        $q$,
        v_sql
    )
    using p_practice_id, p_kind, p_status, p_source, p_category_id, p_from, p_to, p_search,
        api.practice_timezone(p_practice_id), v_after_at, v_after_id, v_limit;
end
$$;
comment on function api.list_payments(uuid, text, text, text, uuid, boolean, date, date, text, boolean, jsonb, integer) is
'Payments of a practice, newest first: kind (sale, refund, decline, other: see private.payment_filter_sql), MX status, source, programme, with or without an invoice, created between (whole days in the practice''s time zone), patient name search, recurring only; keyset page (cursor of the last row in p_after), at most 1,000 rows.';

create or replace function api.payment_totals(
    p_practice_id uuid,
    p_kind text default null,
    p_status text default null,
    p_source text default null,
    p_category_id uuid default null,
    p_has_invoice boolean default null,
    p_from date default null,
    p_to date default null,
    p_search text default null,
    p_recurring boolean default null
)
returns table (
    payment_count bigint,
    sales_count bigint,
    sales_amount numeric,
    refunds_count bigint,
    refunds_amount numeric,
    declines_count bigint,
    declines_amount numeric,
    net_amount numeric
)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_sql text := private.payment_filter_sql(
        p_kind, p_status, p_source, p_category_id, p_has_invoice, p_from, p_to, p_search, p_recurring
    );
begin
    -- refunds count by their size whatever sign MX gives them; net = sales - refunds
    return query execute format(
        $q$
        select
            count(*),
            count(*) filter (where f.kind = 'sale'),
            coalesce(sum(f.amount) filter (where f.kind = 'sale'), 0)::numeric(12, 2),
            count(*) filter (where f.kind = 'refund'),
            coalesce(sum(abs(f.amount)) filter (where f.kind = 'refund'), 0)::numeric(12, 2),
            count(*) filter (where f.kind = 'decline'),
            coalesce(sum(f.amount) filter (where f.kind = 'decline'), 0)::numeric(12, 2),
            (
                coalesce(sum(f.amount) filter (where f.kind = 'sale'), 0)
                - coalesce(sum(abs(f.amount)) filter (where f.kind = 'refund'), 0)
            )::numeric(12, 2)
        from (%s) as f
        $q$,
        v_sql
    )
    using p_practice_id, p_kind, p_status, p_source, p_category_id, p_from, p_to, p_search,
        api.practice_timezone(p_practice_id);
end
$$;
comment on function api.payment_totals(uuid, text, text, text, uuid, boolean, date, date, text, boolean) is
'Totals of api.list_payments for the same filter: payments, sales (succeeded; count and amount), refunds, declines, net = sales - refunds.';

drop function api.payment_filter_sql(text, text, text, uuid, boolean, date, date, text, boolean);
