-- Benchmark data at scale: practices with Zipf-like skew, patients, products mapped to
-- programmes, memberships in every status, years of monthly or quarterly payments (declines,
-- refunds), invoices with 1-3 lines, contracts and the status history.
--
--   psql "$URL" -v ON_ERROR_STOP=1 -v practices=1000 -v payments=10000000 \
--       -v memberships=1000000 -f sql/bench/generate_scale_data.sql
--
-- (scripts/bench.py runs it on a fresh database from scripts/localdb.py.)
--
-- Bulk data is written straight into the app tables as the owner, bypassing the worker's
-- procedures (10 million procedure calls would take hours). The rows are built to be what
-- those procedures would have produced from the same payments:
--   * a membership is (patient, programme); its started_on is the (practice-local) day of its first successful
--     payment, last_paid_at its newest successful payment, amount and product_names those
--     of that payment's invoice lines, payment_status/payment_evidence_at its newest sale or
--     failed recurring payment (private.refresh_membership_from_payments);
--   * paused and canceled memberships have a contract in Inactive / Cancelled changed after
--     their last payment (status source 'contract'), active and past_due ones an Active
--     contract whose next bill date is not yet overdue;
--   * every invoice line's product belongs to the membership's programme, so no payment
--     implies a membership that does not exist;
--   * membership_events holds every status change those payments imply (first payment,
--     each failed recurring payment and the payment after it, the contract change);
--   * a third of the patient x programme rows are one-time purchases (issue 14): every sale
--     from a non-recurring source (QuickPay, Terminal, Invoice, API), 75 days or more apart
--     (so even a practice that counts repeat purchases would not make them members), no
--     contract, status one_time; as they have as many sales as a member has cycles, about a
--     third of all sales are one-time purchases.
-- Not generated: webhook_events / queue history (raw MX JSON columns are '{}').
--
-- Speed: plain (non-constraint) indexes and the foreign keys of the loaded tables are dropped,
-- user triggers disabled (their derived columns are computed here), rows inserted set-based,
-- then every index rebuilt and every foreign key re-added (re-added keys are validated, so the
-- data provably satisfies them). synchronous_commit off, large maintenance_work_mem; the
-- script ends with vacuum analyze (visibility map for index-only scans, fresh statistics).

create schema if not exists bench;
comment on schema bench is 'Benchmark helpers (sql/bench): the scale data generator and its checks.';

create or replace function bench.h(p_key bigint, p_salt integer, p_mod integer)
returns integer
language sql
immutable
parallel safe
set search_path = ''
as $$
    select ((pg_catalog.hashint8(p_key * 16 + p_salt) & 2147483647) % p_mod)::integer
$$;
comment on function bench.h(bigint, integer, integer) is
'Deterministic pseudo-random integer in [0, p_mod) from a key and a salt.';

-- No SET clause, so the planner inlines it into the two queries that decide declines (a
-- function call per billing cycle otherwise): its body names only bench.h and operators.
create or replace function bench.declined_mid_life(p_payment_id bigint, p_cycle integer, p_cycles integer)
returns boolean
language sql
immutable
parallel safe
as $$
    -- a failed recurring payment now and then: never the first cycle, nor the last two
    select p_cycle between 2 and p_cycles - 2 and bench.h(p_payment_id, 17, 50) = 0
$$;
comment on function bench.declined_mid_life(bigint, integer, integer) is
'Whether billing cycle p_cycle of p_cycles (payment p_payment_id) is a mid-life decline.';

create or replace function bench.since(p_started timestamptz)
returns numeric
language sql
volatile
set search_path = ''
as $$
    select round(extract(epoch from pg_catalog.clock_timestamp() - p_started)::numeric, 1)
$$;
comment on function bench.since(timestamptz) is 'Seconds since p_started, to a tenth.';

create or replace function bench.generate_scale_data(
    p_practices integer default 1000,
    p_payments bigint default 10000000,
    p_memberships integer default 1000000
)
returns table (step text, row_count bigint, seconds numeric)
language plpgsql
set search_path = ''
as $fn$
declare
    -- weight of practice i is i^-skew: at 0.75 and 1,000 practices the largest holds ~5%
    v_skew constant numeric := 0.75;
    v_started timestamptz;
    v_rows bigint;
    v_rows2 bigint;
    v_avg numeric;
    v_now timestamptz := date_trunc('minute', now());
    v_tables text[] := array[
        'patients', 'products', 'payments', 'invoices', 'invoice_lines', 'payment_invoices',
        'contracts', 'memberships', 'membership_events'
    ];
    v_table text;
    v_sql text;
    v_drop text;
    v_ddl text[] := '{}';
begin
    if p_practices < 1 or p_memberships < p_practices or p_payments < p_memberships then
        raise exception 'need practices >= 1, memberships >= practices, payments >= memberships';
    end if;
    perform set_config('synchronous_commit', 'off', true);
    perform set_config('maintenance_work_mem', '1GB', true);
    perform set_config('work_mem', '256MB', true);

    -- ------------------------------------------------------------------ clean slate
    v_started := clock_timestamp();
    truncate app.practices cascade;
    delete from auth.users where email like '%@bench.example';

    -- drop plain indexes and foreign keys of the bulk tables, remembering how to rebuild them
    foreach v_table in array v_tables loop
        for v_sql, v_drop in
            select pg_catalog.pg_get_indexdef(i.indexrelid), format('drop index %s', i.indexrelid::regclass)
            from pg_catalog.pg_index as i
            where i.indrelid = format('app.%I', v_table)::regclass
                and not exists (select from pg_catalog.pg_constraint as c where c.conindid = i.indexrelid)
            union all
            select
                format('alter table %s add constraint %I %s',
                    c.conrelid::regclass, c.conname, pg_catalog.pg_get_constraintdef(c.oid)),
                format('alter table %s drop constraint %I', c.conrelid::regclass, c.conname)
            from pg_catalog.pg_constraint as c
            where c.conrelid = format('app.%I', v_table)::regclass and c.contype = 'f'
        loop
            v_ddl := v_ddl || v_sql;
            execute v_drop;
        end loop;
        execute format('alter table app.%I disable trigger user', v_table);
    end loop;
    return query select 'prepare (drop indexes and foreign keys)', cardinality(v_ddl)::bigint, bench.since(v_started);

    -- ------------------------------------------------------------------ practices
    -- practice i gets memberships [m_lo, m_lo + m_n) and patients [p_lo, p_lo + np)
    v_started := clock_timestamp();
    create temp table bp on commit drop as
    with w as (
        select
            i,
            gen_random_uuid() as id,
            gen_random_uuid() as merchant_id,
            power(i::numeric, -v_skew) as w
        from generate_series(1, p_practices) as i
    ),
    c as (
        select w.*, sum(w.w) over (order by w.i) as cum, sum(w.w) over () as total from w
    )
    select
        c.i,
        c.id,
        c.merchant_id,
        floor(p_memberships * c.cum / c.total)::bigint - floor(p_memberships * (c.cum - c.w) / c.total)::bigint
        as m_n
    from c;
    -- a practice needs at least one membership: take it from the largest
    update bp set m_n = 1 where m_n = 0;
    update bp set m_n = m_n - (select sum(m_n) from bp) + p_memberships where i = 1;
    alter table bp add column m_lo bigint, add column np bigint, add column p_lo bigint, add column timezone text;
    update bp set timezone = (array['America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles'])[1 + i % 4];
    -- 1.3 memberships per patient: some patients are in two programmes
    update bp set np = greatest(1, ceil(m_n / 1.3));
    update bp as b set m_lo = x.m_lo, p_lo = x.p_lo
    from (
        select
            i,
            coalesce(sum(m_n) over (order by i rows between unbounded preceding and 1 preceding), 0) as m_lo,
            coalesce(sum(np) over (order by i rows between unbounded preceding and 1 preceding), 0) as p_lo
        from bp
    ) as x
    where x.i = b.i;
    analyze bp;

    insert into app.practices (id, name, slug, timezone, created_at)
    select
        b.id,
        format('Bench Practice %s', b.i),
        format('bench-%s', b.i),
        b.timezone,
        v_now - interval '6 years'
    from bp as b;
    get diagnostics v_rows = row_count;
    insert into app.merchant_accounts (id, practice_id, mx_merchant_id, name, created_at)
    select b.merchant_id, b.id, 900000000 + b.i, format('Bench Practice %s', b.i), v_now - interval '6 years'
    from bp as b;

    -- an owner per practice, four staff more at the five largest
    create temp table busers on commit drop as
    select b.id as practice_id, gen_random_uuid() as user_id, 'owner' as role,
        format('owner-%s@bench.example', b.i) as email
    from bp as b
    union all
    select b.id, gen_random_uuid(), 'staff', format('staff-%s-%s@bench.example', b.i, s)
    from bp as b cross join generate_series(1, 4) as s where b.i <= 5;
    insert into auth.users (id, email) select u.user_id, u.email from busers as u;
    insert into app.practice_members (practice_id, user_id, role)
    select u.practice_id, u.user_id, u.role from busers as u;
    return query select 'practices, merchant accounts, members', v_rows, bench.since(v_started);

    -- ------------------------------------------------------------------ catalogue
    v_started := clock_timestamp();
    create temp table bcat on commit drop as
    select b.i, x.cat_idx, c.id as category_id
    from bp as b
    cross join (values (0, 'TRT'), (1, 'Weight Loss'), (2, 'Peptides'), (3, 'ED'), (4, 'Other')) as x (cat_idx, name)
    inner join app.categories as c on c.practice_id = b.id and c.name = x.name;
    alter table bcat add primary key (i, cat_idx);
    analyze bcat;

    create temp table bprod on commit drop as
    select b.i, x.cat_idx, x.slot, gen_random_uuid() as product_id, x.name, x.price::numeric(12, 2) as price
    from bp as b
    cross join (
        values
        (0, 0, 'Testosterone Cypionate 200mg/ml', 149), (0, 1, 'Enclomiphene 25mg', 89),
        (0, 2, 'Anastrozole 1mg', 29),
        (1, 0, 'Semaglutide 2.5mg', 299), (1, 1, 'Tirzepatide 10mg', 449), (1, 2, 'Vitamin B12 Injection', 25),
        (2, 0, 'BPC-157 5mg', 179), (2, 1, 'Sermorelin 9mg', 199), (2, 2, 'NAD+ 500mg', 149),
        (3, 0, 'Tadalafil 5mg', 59), (3, 1, 'Sildenafil 20mg', 49), (3, 2, 'PT-141 10mg', 129),
        (4, 0, 'Lab Panel', 120), (4, 1, 'Office Visit', 95), (4, 2, 'Consultation', 150)
    ) as x (cat_idx, slot, name, price);
    alter table bprod add primary key (i, cat_idx, slot);
    analyze bprod;
    insert into app.products (id, practice_id, name, category_id, category_confirmed, first_seen_at)
    select p.product_id, b.id, p.name, c.category_id, true, v_now - interval '6 years'
    from bprod as p
    inner join bp as b on b.i = p.i
    inner join bcat as c on c.i = p.i and c.cat_idx = p.cat_idx;
    get diagnostics v_rows = row_count;
    -- and one product not yet mapped (never sold) per practice
    insert into app.products (practice_id, name, category_id, first_seen_at)
    select b.id, 'Glutathione 200mg', private.uncategorized_id(b.id), v_now - interval '3 days'
    from bp as b;
    get diagnostics v_rows2 = row_count;
    return query select 'products', v_rows + v_rows2, bench.since(v_started);

    -- ------------------------------------------------------------------ patients
    v_started := clock_timestamp();
    create temp table bpt on commit drop as
    select
        b.i,
        j,
        gen_random_uuid() as id,
        n.name,
        private.name_key(n.name) as name_key,
        b.p_lo + j + 1 as g
    from bp as b
    cross join lateral generate_series(0, b.np - 1) as j
    cross join lateral (
        select (array[
            'James', 'Mary', 'Robert', 'Patricia', 'John', 'Jennifer', 'Michael', 'Linda', 'David',
            'Elizabeth', 'William', 'Barbara', 'Richard', 'Susan', 'Joseph', 'Jessica', 'Thomas',
            'Sarah', 'Charles', 'Karen', 'Daniel', 'Lisa', 'Matthew', 'Nancy', 'Anthony', 'Betty',
            'Mark', 'Sandra', 'Steven', 'Ashley', 'Paul', 'Emily', 'Andrew', 'Donna', 'Joshua',
            'Michelle', 'Kevin', 'Carol', 'Brian', 'Amanda'
        ])[1 + bench.h(b.p_lo + j, 1, 40)]
        || ' '
        || (array[
            'Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis',
            'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson',
            'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin', 'Lee', 'Perez', 'Thompson', 'White',
            'Harris', 'Sanchez', 'Clark', 'Ramirez', 'Lewis', 'Robinson', 'Walker', 'Young',
            'Allen', 'King', 'Wright', 'Scott', 'Torres', 'Nguyen', 'Hill', 'Flores', 'Green',
            'Adams', 'Nelson', 'Baker', 'Hall', 'Rivera', 'Campbell', 'Mitchell', 'Carter', 'Roberts'
        ])[1 + bench.h(b.p_lo + j, 2, 50)]
        || case when bench.h(b.p_lo + j, 3, 4) = 0 then '-' || (array[
            'Ortiz', 'Reyes', 'Cruz', 'Morgan', 'Cooper', 'Kim', 'Patel', 'Shah', 'Bell', 'Ward'
        ])[1 + bench.h(b.p_lo + j, 4, 10)] else '' end as name
    ) as n;
    alter table bpt add primary key (i, j);
    analyze bpt;
    insert into app.patients (id, practice_id, mx_customer_id, customer_code, name, email, created_at, updated_at)
    select
        t.id, b.id, 10000000 + t.g,
        case when bench.h(t.g, 5, 10) < 4 then null else format('C%s', 10000 + t.g) end,
        t.name,
        case when bench.h(t.g, 6, 10) < 8 then format('%s.%s@example.com', replace(t.name_key, ' ', '.'), t.g) end,
        v_now - interval '6 years', v_now - interval '6 years'
    from bpt as t
    inner join bp as b on b.i = t.i;
    get diagnostics v_rows = row_count;
    return query select 'patients', v_rows, bench.since(v_started);

    -- ------------------------------------------------------------------ memberships (staging)
    -- Membership j of practice i: patient j % np, programme (patient's favourite + j / np) % 5,
    -- so a patient's programmes are distinct. Cycles n average payments/memberships.
    v_started := clock_timestamp();
    v_avg := greatest(1.0, (p_payments::numeric / p_memberships) / 1.01);
    create temp table bm on commit drop as
    with base as (
        select
            b.i,
            b.m_lo + j + 1 as k,
            j % b.np as pj,
            (
                (array[0, 0, 0, 0, 1, 1, 1, 2, 2, 3])[1 + bench.h(b.p_lo + j % b.np, 7, 10)]
                + (j / b.np)
            ) % 5 as cat_idx,
            b.id as practice_id,
            b.merchant_id
        from bp as b
        cross join lateral generate_series(0, b.m_n - 1) as j
    ),
    s as (
        select
            base.*,
            case
                when bench.h(k, 27, 3) = 0 then 'one_time'
                when bench.h(k, 8, 100) < 60 then 'active'
                when bench.h(k, 8, 100) < 68 then 'past_due'
                when bench.h(k, 8, 100) < 75 then 'paused'
                else 'canceled'
            end as status,
            1 + floor(bench.h(k, 9, 1000000) / 1000000.0 * (2 * v_avg - 1))::integer as n0,
            case when bench.h(k, 10, 10) = 0 then 'Quarterly' else 'Monthly' end as billing_interval0,
            case bench.h(k, 11, 20) when 0 then 3 when 1 then 3 when 2 then 3 else 1 end as line_count0,
            bench.h(k, 12, 100) = 0 as refunded
        from base
    ),
    t as (
        select
            s.i, s.k, s.pj, s.cat_idx, s.status, s.refunded, s.practice_id,
            case when s.status <> 'one_time' then s.billing_interval0 end as billing_interval,
            s.merchant_id,
            case when s.status = 'past_due' then greatest(s.n0, 2) else s.n0 end as n,
            case when s.line_count0 = 3 then 3 when bench.h(s.k, 13, 100) < 40 then 2 else 1 end as line_count,
            case
                when s.status = 'one_time' then interval '75 days'
                when s.billing_interval0 = 'Quarterly' then interval '3 months'
                else interval '1 month'
            end as step,
            -- time of the newest billing cycle (a decline for past_due)
            case
                when s.status in ('active', 'past_due') then
                    v_now - make_interval(
                        days => bench.h(s.k, 14, case when s.billing_interval0 = 'Quarterly' then 80 else 26 end),
                        mins => bench.h(s.k, 15, 1440)
                    )
                else v_now - make_interval(days => 30 + bench.h(s.k, 14, 1400), mins => bench.h(s.k, 15, 1440))
            end as last_at,
            make_interval(days => 3 + bench.h(s.k, 16, 25)) as change_after
        from s
    ),
    u as (
        select
            t.*,
            -- payment ids: the cycles then the refund of each membership, consecutive
            coalesce(sum(t.n + t.refunded::integer) over (
                order by t.k rows between unbounded preceding and 1 preceding
            ), 0) as pay_base,
            -- the first billing cycle: the membership's start
            t.last_at - t.step * (t.n - 1) as first_at,
            case t.status when 'paused' then 'Inactive' when 'canceled' then 'Cancelled' else 'Active' end
            as contract_status,
            -- paused and canceled: the contract changed after the last payment
            case when t.status in ('paused', 'canceled') then t.last_at + t.change_after end as changed_at
        from t
    )
    select
        u.*,
        gen_random_uuid() as membership_id,
        (
            select max(c) from generate_series(2, u.n - 2) as c
            where u.status <> 'one_time' and bench.declined_mid_life(u.pay_base + c, c, u.n)
        ) as mid_last_decline,
        pt.id as patient_id,
        c.category_id,
        pt.name_key,
        pt.name as customer_name,
        pr.ids as product_ids,
        pr.names as product_names,
        pr.prices,
        pr.amount
    from u
    inner join bpt as pt on pt.i = u.i and pt.j = u.pj
    inner join bcat as c on c.i = u.i and c.cat_idx = u.cat_idx
    cross join lateral (
        select
            array_agg(p.product_id order by p.slot) as ids,
            array_agg(p.name order by p.slot) as names,
            array_agg(p.price order by p.slot) as prices,
            sum(p.price)::numeric(12, 2) as amount
        from bprod as p
        where p.i = u.i and p.cat_idx = u.cat_idx and p.slot < u.line_count
    ) as pr;
    get diagnostics v_rows = row_count;
    alter table bm add primary key (k);
    analyze bm;
    return query select 'memberships staged', v_rows, bench.since(v_started);

    -- ------------------------------------------------------------------ billing cycles
    -- one row per cycle: the payment, its invoice (same id) and lines
    v_started := clock_timestamp();
    create temp table bc on commit drop as
    select
        bm.k,
        c as cycle,
        bm.pay_base + c as id,
        bm.last_at - bm.step * (bm.n - c) as at,
        (c = bm.n and bm.status = 'past_due')
        or (bm.status <> 'one_time' and bench.declined_mid_life(bm.pay_base + c, c, bm.n)) as declined
    from bm cross join lateral generate_series(1, bm.n) as c;
    get diagnostics v_rows = row_count;
    return query select 'billing cycles staged', v_rows, bench.since(v_started);

    v_started := clock_timestamp();
    insert into app.payments (
        id, practice_id, merchant_account_id, patient_id, original_payment_id, status, type, source,
        tender_type, amount, tax_amount, surcharge_amount, refunded_amount, settled_amount, currency,
        mx_created_at, settled_at, auth_code, auth_message, response_code, reference, invoice_number,
        client_reference, customer_code, customer_name, card_type, card_last4, batch, raw, fetched_at,
        source_event_id, created_at, updated_at
    )
    select
        c.id, bm.practice_id, bm.merchant_id, bm.patient_id, null,
        case when c.declined then 'Declined' when c.at > v_now - interval '3 days' then 'Approved' else 'Settled' end,
        'Sale',
        case
            when bm.status = 'one_time' then (array['QuickPay', 'Terminal', 'Invoice', 'API'])[1 + bench.h(c.id, 18, 4)]
            when c.cycle = 1 then (array['QuickPay', 'Invoice', 'API'])[1 + bench.h(c.id, 18, 3)]
            else 'Recurring'
        end,
        'Card', bm.amount, 0, 0,
        case when bm.refunded and c.cycle = 1 then bm.prices[1] else 0 end,
        case when c.declined or c.at > v_now - interval '3 days' then 0 else bm.amount end,
        'USD', c.at,
        case when not c.declined and c.at <= v_now - interval '3 days' then c.at + interval '1 day' end,
        case when c.declined then '' else upper(to_hex(100000 + bench.h(c.id, 19, 900000))) end,
        case when c.declined then 'Do Not Honor' else 'Approved or completed successfully' end,
        case when c.declined then 5 else 0 end,
        (100000000000 + c.id)::text, c.id::text, '', null, bm.customer_name,
        (array['Visa', 'MasterCard', 'Amex', 'Discover'])[1 + bench.h(bm.k, 20, 4)],
        lpad(bench.h(bm.k, 21, 10000)::text, 4, '0'),
        case when c.declined then '' else to_char(c.at, 'YYYYMMDD') end,
        '{}'::jsonb, c.at + interval '30 seconds', 0, c.at + interval '30 seconds', c.at + interval '30 seconds'
    from bc as c
    inner join bm on bm.k = c.k
    union all
    -- refunds of the first payment (no invoice of their own)
    select
        bm.pay_base + bm.n + 1, bm.practice_id, bm.merchant_id, bm.patient_id, bm.pay_base + 1,
        'Settled', 'Return', 'QuickPay', 'Card', bm.prices[1], 0, 0, 0, bm.prices[1], 'USD',
        c.at + interval '3 days', c.at + interval '4 days', '', 'Approved or completed successfully', 0,
        (100000000000 + bm.pay_base + bm.n + 1)::text, null, '', null, bm.customer_name, 'Visa', '4242', '',
        '{}'::jsonb, c.at + interval '3 days', 0, c.at + interval '3 days', c.at + interval '3 days'
    from bm
    inner join bc as c on c.k = bm.k and c.cycle = 1
    where bm.refunded;
    get diagnostics v_rows = row_count;
    return query select 'payments', v_rows, bench.since(v_started);

    v_started := clock_timestamp();
    insert into app.invoices (
        id, practice_id, merchant_account_id, patient_id, invoice_number, status, type, source_type,
        receipt_number, terms, total_amount, sub_total_amount, tax_amount, discount_amount, balance,
        paid_amount, invoice_date, due_date, mx_created_at, is_tax_exempt, memo, raw, fetched_at,
        source_event_id, data_sent_status, data_sent_at, created_at, updated_at
    )
    select
        c.id, bm.practice_id, bm.merchant_id, bm.patient_id, c.id::text,
        case when c.declined then 'Unpaid' else 'Paid' end,
        'Sale', case when c.cycle = 1 or bm.status = 'one_time' then 'QuickPay' else 'Recurring' end,
        c.id::text, 'Due on receipt', bm.amount, bm.amount, 0, 0,
        case when c.declined then bm.amount else 0 end,
        case when c.declined then 0 else bm.amount end,
        c.at::date, c.at::date, c.at, false, null, '{}', c.at + interval '30 seconds', 0,
        case
            when c.at > v_now - interval '10 days' then (array['pending', 'pending', 'yes', 'no'])[1 + bench.h(c.id, 22, 4)]
            else 'yes'
        end,
        case when c.at <= v_now - interval '10 days' then c.at + interval '2 days' end,
        c.at + interval '30 seconds', c.at + interval '30 seconds'
    from bc as c
    inner join bm on bm.k = c.k;
    get diagnostics v_rows = row_count;
    return query select 'invoices', v_rows, bench.since(v_started);

    v_started := clock_timestamp();
    insert into app.invoice_lines (
        invoice_id, line_no, practice_id, mx_purchase_id, mx_product_id, product_id, category_id,
        product_name, description, quantity, quantity_returned, price, sub_total_amount, tax_amount,
        discount_amount, total_amount
    )
    select
        c.id, s, bm.practice_id, c.id * 4 + s, null, bm.product_ids[s], bm.category_id,
        bm.product_names[s], null, 1, 0, bm.prices[s], bm.prices[s], 0, 0, bm.prices[s]
    from bc as c
    inner join bm on bm.k = c.k
    cross join lateral generate_series(1, bm.line_count) as s;
    get diagnostics v_rows = row_count;
    return query select 'invoice lines', v_rows, bench.since(v_started);

    v_started := clock_timestamp();
    insert into app.payment_invoices (payment_id, invoice_id, practice_id)
    select c.id, c.id, bm.practice_id
    from bc as c
    inner join bm on bm.k = c.k;
    get diagnostics v_rows = row_count;
    return query select 'payment invoices', v_rows, bench.since(v_started);

    -- ------------------------------------------------------------------ contracts, memberships
    v_started := clock_timestamp();
    insert into app.contracts (
        id, practice_id, merchant_account_id, patient_id, subscription_id, name, customer_name,
        billing_interval, every, bill_on, amount, type, status, status_changed_at, start_date,
        next_bill_date, last_invoice_date, has_declined_payment, currency_code, raw, fetched_at,
        created_at, updated_at
    )
    select
        bm.k, bm.practice_id, bm.merchant_id, bm.patient_id, null,
        (array['TRT', 'Weight Loss', 'Peptides', 'ED', 'Other'])[1 + bm.cat_idx], bm.customer_name,
        bm.billing_interval, case when bm.billing_interval = 'Quarterly' then '3 Months' else '1 Month' end,
        'Day of month', bm.amount, 'Recurring',
        bm.contract_status, coalesce(bm.changed_at, bm.first_at), (bm.first_at at time zone bp.timezone)::date,
        case when bm.status in ('active', 'past_due') then (bm.last_at + bm.step)::date end,
        bm.last_at::date, bm.status = 'past_due', 'USD', '{}', v_now - interval '1 hour',
        bm.first_at, v_now - interval '1 hour'
    from bm
    inner join bp on bm.practice_id = bp.id
    where bm.status <> 'one_time';
    get diagnostics v_rows = row_count;
    return query select 'contracts', v_rows, bench.since(v_started);

    v_started := clock_timestamp();
    insert into app.memberships (
        id, practice_id, patient_id, category_id, status, status_source, status_changed_at, started_on,
        last_paid_at, next_billing_on, canceled_at, amount, billing_interval, contract_id, product_names,
        payment_status, payment_evidence_at, contract_status, contract_status_changed_at,
        google_review_submitted, google_review_at, referral_source, fulfillment, notes, created_at,
        updated_at, patient_name_key, recurring_since, billing_period, billing_period_source
    )
    select
        bm.membership_id, bm.practice_id, bm.patient_id, bm.category_id, bm.status,
        case when bm.status in ('paused', 'canceled') then 'contract' else 'payment' end,
        case
            when bm.status in ('paused', 'canceled') then bm.changed_at
            when bm.status = 'past_due' then bm.last_at
            when bm.mid_last_decline is not null then bm.last_at - bm.step * (bm.n - bm.mid_last_decline - 1)
            else bm.first_at
        end,
        (bm.first_at at time zone bp.timezone)::date,  -- the practice's local date
        case when bm.status = 'past_due' then bm.last_at - bm.step else bm.last_at end,
        case when bm.status in ('active', 'past_due') then (bm.last_at + bm.step)::date end,
        case when bm.status = 'canceled' then bm.changed_at end,
        bm.amount, bm.billing_interval, case when bm.status <> 'one_time' then bm.k end,
        array(select x from unnest(bm.product_names) as x order by x),
        case when bm.status = 'past_due' then 'past_due' else 'active' end,
        bm.last_at,
        case when bm.status <> 'one_time' then bm.contract_status end,
        case when bm.status <> 'one_time' then coalesce(bm.changed_at, bm.first_at) end,
        bench.h(bm.k, 23, 10) < 3,
        case when bench.h(bm.k, 23, 10) < 3 then bm.first_at + interval '5 days' end,
        (array['online', 'refer_a_friend', 'other', null, null])[1 + bench.h(bm.k, 24, 5)],
        (array['in_office', 'mail_out', null])[1 + bench.h(bm.k, 25, 3)],
        case when bench.h(bm.k, 26, 20) = 0 then 'Prefers a call in the morning' end,
        bm.first_at + interval '1 minute',
        v_now - interval '1 hour',
        bm.name_key,
        -- the first Recurring-source payment is the second cycle (the first is QuickPay/...)
        case when bm.status <> 'one_time' and bm.n >= 2 then bm.first_at + bm.step end,
        case when bm.status <> 'one_time' then bm.step end,
        case when bm.status <> 'one_time' then 'contract' end
    from bm
    inner join bp on bm.practice_id = bp.id;
    get diagnostics v_rows = row_count;
    return query select 'memberships', v_rows, bench.since(v_started);

    -- every status change the payments and contracts imply
    v_started := clock_timestamp();
    insert into app.membership_events (
        practice_id, membership_id, old_status, new_status, source, evidence_at, recorded_at
    )
    select e.practice_id, e.membership_id, e.old_status, e.new_status, e.source, e.evidence_at,
        e.evidence_at + interval '1 minute'
    from (
        -- the first payment (a one-time purchase: says so, issue 14)
        select bm.practice_id, bm.membership_id, null as old_status,
            case when bm.status = 'one_time' then 'one_time' else 'active' end as new_status,
            'payment' as source, bm.first_at as evidence_at
        from bm
        union all
        -- a failed recurring payment, then the next successful one
        select bm.practice_id, bm.membership_id, x.old_status, x.new_status, 'payment',
            bm.last_at - bm.step * (bm.n - c.cycle - x.after)
        from bm
        inner join bc as c on c.k = bm.k and c.declined and c.cycle < bm.n
        cross join (values ('active', 'past_due', 0), ('past_due', 'active', 1)) as x (old_status, new_status, after)
        union all
        -- the current state when it is not active
        select bm.practice_id, bm.membership_id, 'active', bm.status,
            case when bm.status = 'past_due' then 'payment' else 'contract' end,
            coalesce(bm.changed_at, bm.last_at)
        from bm
        where bm.status not in ('active', 'one_time')
    ) as e;
    get diagnostics v_rows = row_count;
    return query select 'membership events', v_rows, bench.since(v_started);

    -- ------------------------------------------------------------------ indexes, keys, triggers
    v_started := clock_timestamp();
    foreach v_sql in array v_ddl loop
        execute v_sql;
    end loop;
    foreach v_table in array v_tables loop
        execute format('alter table app.%I enable trigger user', v_table);
    end loop;
    return query select 'indexes rebuilt, foreign keys validated', cardinality(v_ddl)::bigint, bench.since(v_started);

    -- the dashboard's tab counters are kept by a trigger, which was off during the load
    v_started := clock_timestamp();
    v_rows := private.rebuild_membership_counts();
    return query select 'membership counters rebuilt', v_rows, bench.since(v_started);
end
$fn$;
comment on function bench.generate_scale_data(integer, bigint, integer) is
'Fill a fresh project database with benchmark data (see sql/bench/generate_scale_data.sql).';

select
    g.step,
    g.row_count,
    g.seconds
from bench.generate_scale_data(:practices, :payments, :memberships) as g;

vacuum (analyze) app.practices, app.practice_members, app.categories, app.merchant_accounts,
app.patients, app.products, app.payments, app.invoices, app.invoice_lines, app.payment_invoices,
app.contracts, app.memberships, app.membership_events, app.membership_counts, auth.users;
