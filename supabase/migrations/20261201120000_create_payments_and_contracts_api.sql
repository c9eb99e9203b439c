-- The dashboard's payments and contracts pages (issue 11, items 3 and 4), through `api` under
-- RLS like every other page:
--   * api.list_payments: every payment of a practice with its filters (sale / refund / decline,
--     status, source, programme, with or without an invoice, date range in the practice's time
--     zone, patient name, recurring only), newest first, keyset pages on the existing index
--     payments_practice_created_idx (practice_id, mx_created_at desc, id desc): page 1,000 of
--     a practice with a million payments costs what page 1 costs;
--   * api.payment_totals: count, sales, refunds, declines and net for the same filter;
--   * api.payment_csv_lines: the same filter as CSV lines (every field through api.csv_cell),
--     a page at a time, which the dashboard streams; api.export_payments_csv: all in one text;
--   * api.payment_filter_sql: the one definition of the filter the three share (and of what a
--     sale, a refund and a decline are), so that the totals always count the listed rows;
--   * api.contracts (without the raw MX JSON, which members may not read) and
--     api.contract_payments (which payments a contract billed).
-- Indexes: the list walks payments_practice_created_idx, a patient search can use
-- payments_patient_created_idx, and the totals read the practice's rows once. One new, partial
-- index for the rare kinds: declines and refunds are a few percent of a practice's payments,
-- and without it a page of them (or their totals) read the whole practice (0.9 s for the
-- refunds of a practice with a million payments, 35 ms with it).
create index payments_practice_declines_refunds_idx on app.payments (practice_id, mx_created_at desc, id desc)
where status = 'Declined' or type in ('Return', 'Refund');
comment on index app.payments_practice_declines_refunds_idx is
'Declines and refunds of a practice, newest first (api.list_payments / payment_totals with p_kind decline or refund).';

-- What a payment is, as the lists and totals count it:
--   decline: MX declined it (status Declined), whatever its type;
--   refund:  a Return (MX's name for a refund) or Refund that was not declined;
--   sale:    a Sale or SaleCompletion that succeeded (Approved or Settled), as memberships count;
--   other:   the rest (voided sales, authorisations, ...): listed and counted, in no total.
create function api.payment_filter_sql(
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
comment on function api.payment_filter_sql(text, text, text, uuid, boolean, date, date, text, boolean) is
'The query behind api.list_payments, api.payment_totals and api.export_payments_csv (one definition of the filter and of sale, refund, decline; no data read): parameters $1 practice, $2 kind, $3 status, $4 source, $5 programme, $6 from, $7 to, $8 search, $9 the practice''s time zone. Checks the values (22023).';
revoke all on function api.payment_filter_sql(text, text, text, uuid, boolean, date, date, text, boolean) from public;
grant execute on function api.payment_filter_sql(text, text, text, uuid, boolean, date, date, text, boolean)
to authenticated;

-- The practice's time zone (RLS: UTC for a practice the caller cannot see, which has no
-- payments for them either).
create function api.practice_timezone(p_practice_id uuid)
returns text
language sql
stable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce((select pr.timezone from app.practices as pr where pr.id = p_practice_id), 'UTC')
$$;
comment on function api.practice_timezone(uuid) is
'The practice''s time zone, UTC for a practice the caller cannot see: what "a day" means in its lists and exports.';
revoke all on function api.practice_timezone(uuid) from public;
grant execute on function api.practice_timezone(uuid) to authenticated;

create function api.list_payments(
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
    v_sql text := api.payment_filter_sql(
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
'Payments of a practice, newest first: kind (sale, refund, decline, other: see api.payment_filter_sql), MX status, source, programme, with or without an invoice, created between (whole days in the practice''s time zone), patient name search, recurring only; keyset page (cursor of the last row in p_after), at most 1,000 rows.';
revoke all on function api.list_payments(uuid, text, text, text, uuid, boolean, date, date, text, boolean, jsonb, integer)
from public;
grant execute on function api.list_payments(
    uuid, text, text, text, uuid, boolean, date, date, text, boolean, jsonb, integer
) to authenticated;

create function api.payment_totals(
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
    v_sql text := api.payment_filter_sql(
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
revoke all on function api.payment_totals(uuid, text, text, text, uuid, boolean, date, date, text, boolean)
from public;
grant execute on function api.payment_totals(uuid, text, text, text, uuid, boolean, date, date, text, boolean)
to authenticated;

-- The CSV a page at a time, for a client that streams it: every cell goes through
-- api.csv_cell, a function call each (about 0.25 s per 1,000 payments), so one statement for a
-- practice's million payments would outlast any statement timeout; a page of 1,000 does not.
create function api.payment_csv_lines(
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
    p_limit integer default 1000
)
returns table (line text, cursor jsonb)
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_timezone text := api.practice_timezone(p_practice_id);
begin
    if p_after is null then  -- the first page starts with the header
        return query select
            'payment_id,created_at,time_zone,kind,type,status,source,recurring,amount,patient_name,'
            || 'programmes,invoice_number,card_type,card_last4,auth_code,contract_id' || e'\r\n',
            null::jsonb;
    end if;
    return query
    select
        (
            select string_agg(api.csv_cell(x.v), ',' order by x.n)
            from unnest(array[
                l.id::text, to_char(l.mx_created_at at time zone v_timezone, 'YYYY-MM-DD HH24:MI:SS'),
                v_timezone, l.kind, l.type, l.status, l.source, l.recurring::text, l.amount::text,
                l.patient_name, array_to_string(l.programmes, '; '), l.invoice_number, l.card_type,
                l.card_last4, l.auth_code, l.contract_id::text
            ]) with ordinality as x (v, n)
        ) || e'\r\n',
        l.cursor
    from api.list_payments(
        p_practice_id, p_kind, p_status, p_source, p_category_id, p_has_invoice, p_from, p_to,
        p_search, p_recurring, p_after, p_limit
    ) as l;
end
$$;
comment on function api.payment_csv_lines(
    uuid, text, text, text, uuid, boolean, date, date, text, boolean, jsonb, integer
) is
'One page of the payments CSV (api.list_payments'' filters and keyset page), a line per payment with its cursor, the header first on the first page (p_after null); times in the practice''s time zone; every field through api.csv_cell (no cell a spreadsheet runs as a formula).';
revoke all on function api.payment_csv_lines(
    uuid, text, text, text, uuid, boolean, date, date, text, boolean, jsonb, integer
) from public;
grant execute on function api.payment_csv_lines(
    uuid, text, text, text, uuid, boolean, date, date, text, boolean, jsonb, integer
) to authenticated;

create function api.export_payments_csv(
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
returns text
language plpgsql
stable
set search_path = pg_catalog, pg_temp
as $$
declare
    v_page constant integer := 1000;
    v_after jsonb;
    v_rows integer;
    v_chunk text;
    v_chunks text[] := '{}';  -- appended in place, joined once: no copy of the whole text per page
begin
    loop
        select count(c.cursor), string_agg(c.line, '' order by c.ord), (array_agg(c.cursor order by c.ord desc))[1]
        into v_rows, v_chunk, v_after
        from api.payment_csv_lines(
            p_practice_id, p_kind, p_status, p_source, p_category_id, p_has_invoice, p_from, p_to,
            p_search, p_recurring, v_after, v_page
        ) with ordinality as c (line, cursor, ord);
        v_chunks := v_chunks || coalesce(v_chunk, '');
        exit when v_rows < v_page;
    end loop;
    return array_to_string(v_chunks, '');
end
$$;
comment on function api.export_payments_csv(uuid, text, text, text, uuid, boolean, date, date, text, boolean) is
'The payments list (same filters, newest first) as one CSV text with a header row (api.payment_csv_lines, page after page): for filters of up to some ten thousand payments; stream larger ones page by page.';
revoke all on function api.export_payments_csv(uuid, text, text, text, uuid, boolean, date, date, text, boolean)
from public;
grant execute on function api.export_payments_csv(
    uuid, text, text, text, uuid, boolean, date, date, text, boolean
) to authenticated;

-- Contracts without raw (members have no select on app.contracts.raw): the status is MX's
-- own text, kept as it comes (Active, Inactive, Cancelled, Completed, Deleted, and whatever
-- MX adds); membership_ids: the memberships this contract bills (RLS applies to them too).
create view api.contracts with (security_invoker = true) as
select
    c.id,
    c.practice_id,
    c.merchant_account_id,
    c.patient_id,
    c.subscription_id,
    c.name,
    c.customer_name,
    c.billing_interval,
    c.every,
    c.bill_on,
    c.amount,
    c.type,
    c.status,
    c.status_changed_at,
    c.start_date,
    c.next_bill_date,
    c.last_invoice_date,
    c.has_declined_payment,
    c.currency_code,
    c.fetched_at,
    c.created_at,
    c.updated_at,
    array(select m.id from app.memberships as m where m.contract_id = c.id order by m.id) as membership_ids
from app.contracts as c;
comment on view api.contracts is
'MX recurring-billing contracts of the user''s practices (MX''s status text as it comes; no raw MX JSON), with the memberships each bills.';
grant select on api.contracts to authenticated;

create view api.contract_payments with (security_invoker = true) as
select
    cp.contract_id,
    cp.payment_id,
    cp.practice_id
from app.contract_payments as cp;
comment on view api.contract_payments is 'Which payments each MX contract billed (join api.payments on payment_id).';
grant select on api.contract_payments to authenticated;
