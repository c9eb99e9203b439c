-- Issue 12, items 3 and 11: the worker's upserts.
--
-- Item 3 (tenants): no upsert changes a row's practice. A payment or invoice already stored
-- for another practice or merchant account is refused with an error (the event goes to the
-- dead letters for an operator), never rewritten; the invoice's lines are replaced only under
-- the invoice's own practice. The composite foreign keys of 20261130100100 hold the same rule
-- in the schema.
--
-- Item 11 (MX data the project does not hold never dead-letters an event): a reference to an
-- MX record is kept as data and linked if and when the record arrives.
--   * a refund names its sale in app.payments.mx_original_id (as MX wrote it); the foreign
--     key original_payment_id is set when the sale is stored, now or whenever it arrives (a
--     sale from before the practice was onboarded that MX no longer serves stays unlinked);
--   * a payment's invoice ids are kept in app.payments.mx_invoice_ids; an invoice MX answered
--     404 for is linked (app.payment_invoices) when it is stored later;
--   * an id of 0 or "" means "none" (private.mx_id), in SQL as in the worker's models.

-- ---------------------------------------------------------------------------
-- References kept as data
-- ---------------------------------------------------------------------------
alter table app.payments add column mx_original_id bigint;
alter table app.payments add column mx_invoice_ids bigint[] not null default '{}';
comment on column app.payments.mx_original_id is
'The sale a refund returns, as MX names it (original_payment_id links it once that sale is stored).';
comment on column app.payments.mx_invoice_ids is
'The invoices MX names for this payment (app.payment_invoices links each one once it is stored).';

update app.payments set mx_original_id = original_payment_id where original_payment_id is not null;
update app.payments as p
set mx_invoice_ids = l.invoice_ids
from (
    select
        pi.payment_id,
        array_agg(pi.invoice_id order by pi.invoice_id) as invoice_ids
    from app.payment_invoices as pi
    group by pi.payment_id
) as l
where p.id = l.payment_id;

-- Refunds still waiting for their sale, found when the sale arrives.
create index payments_unlinked_original_idx on app.payments (mx_original_id)
where original_payment_id is null and mx_original_id is not null;
-- Payments naming an invoice, found when the invoice arrives.
-- fastupdate off: every worker call searches this index, and a search reads the whole
-- pending list of a fast-update GIN index
create index payments_mx_invoice_ids_idx on app.payments using gin (mx_invoice_ids) with (fastupdate = off);

create function private.mx_id(p jsonb, key text)
returns bigint
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select nullif(nullif(btrim(p ->> key), ''), '0')::bigint
$$;
comment on function private.mx_id(jsonb, text) is
'An MX id field of canonical JSON: missing, null, "" and 0 all mean none.';

create function private.mx_ids(p jsonb, key text)
returns bigint[]
language sql
immutable
set search_path = pg_catalog, pg_temp
as $$
    select coalesce(
        array_agg(distinct nullif(nullif(btrim(e.value), ''), '0')::bigint)
        filter (where nullif(nullif(btrim(e.value), ''), '0') is not null),
        '{}'
    )
    from jsonb_array_elements_text(
        case when jsonb_typeof(p -> key) = 'array' then p -> key else '[]' end
    ) as e (value)
$$;
comment on function private.mx_ids(jsonb, text) is
'An MX id list of canonical JSON, without the entries that mean none (null, "", 0).';

-- ---------------------------------------------------------------------------
-- Patients: an MX customer id of 0 means no customer id
-- ---------------------------------------------------------------------------
create or replace function private.upsert_patient(
    p_practice_id uuid, p_mx_customer_id bigint, p_name text, p_customer_code text
)
returns uuid
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_name text := nullif(trim(p_name), '');
    v_key text := private.name_key(p_name);
    v_customer_id bigint := nullif(p_mx_customer_id, 0);
    v_id uuid;
begin
    if v_name is null and v_customer_id is null then
        return null;
    end if;
    -- one patient identity at a time per practice: concurrent events for the same
    -- person must not create two rows
    perform pg_advisory_xact_lock(hashtextextended(p_practice_id::text || coalesce(v_key, ''), 0));

    if v_customer_id is not null then
        select id into v_id from app.patients
        where practice_id = p_practice_id and mx_customer_id = v_customer_id;
        if v_id is null and v_key is not null then
            -- known so far by name only: attach the MX customer id
            update app.patients set mx_customer_id = v_customer_id
            where practice_id = p_practice_id and name_key = v_key and mx_customer_id is null
            returning id into v_id;
        end if;
        if v_id is null then
            insert into app.patients (practice_id, mx_customer_id, name, customer_code)
            values (p_practice_id, v_customer_id, coalesce(v_name, 'Customer ' || v_customer_id),
                nullif(p_customer_code, ''))
            returning id into v_id;
        end if;
    else
        select id into v_id from app.patients
        where practice_id = p_practice_id and name_key = v_key
        order by mx_customer_id nulls last, created_at
        limit 1;
        if v_id is null then
            insert into app.patients (practice_id, name, customer_code)
            values (p_practice_id, v_name, nullif(p_customer_code, ''))
            returning id into v_id;
        end if;
    end if;
    return v_id;
end
$$;
comment on function private.upsert_patient(uuid, bigint, text, text) is
'Find or create a patient by MX customer id (0 means none), else by name within the practice.';

-- ---------------------------------------------------------------------------
-- Payments
-- ---------------------------------------------------------------------------
create or replace function private.upsert_payment(
    p_account app.merchant_accounts, p_patient_id uuid, p_payment jsonb,
    p_fetched_at timestamptz, p_event_id bigint
)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_id bigint := private.mx_id(p_payment, 'id');
    v_original_id bigint := private.mx_id(p_payment, 'original_id');
    v_invoice_ids bigint [] := private.mx_ids(p_payment, 'invoice_ids');
    v_stored_practice_id uuid;
    v_stored_account_id uuid;
    v_applied boolean;
begin
    if v_id is null then
        raise exception 'payment without an id' using errcode = '22023';
    end if;
    -- a stored row never changes practice or merchant account
    select p.practice_id, p.merchant_account_id into v_stored_practice_id, v_stored_account_id
    from app.payments as p where p.id = v_id;
    if found and (v_stored_practice_id, v_stored_account_id) is distinct from (p_account.practice_id, p_account.id) then
        raise exception 'payment % is stored for another practice or merchant account; it is never moved', v_id
        using errcode = '23514';
    end if;

    insert into app.payments as p (
        id, practice_id, merchant_account_id, patient_id, original_payment_id, mx_original_id, mx_invoice_ids,
        status, type, source, tender_type, amount, tax_amount, surcharge_amount, refunded_amount, settled_amount,
        currency, mx_created_at, settled_at, auth_code, auth_message, response_code, reference,
        invoice_number, client_reference, customer_code, customer_name, card_type, card_last4,
        batch, raw, fetched_at, source_event_id
    )
    values (
        v_id, p_account.practice_id, p_account.id, p_patient_id,
        -- linked only when the sale is stored (in this practice); else kept as data
        (
            select s.id from app.payments as s
            where s.id = v_original_id and s.practice_id = p_account.practice_id
        ),
        v_original_id, v_invoice_ids,
        coalesce(p_payment ->> 'status', 'Unknown'), coalesce(p_payment ->> 'type', 'Unknown'),
        p_payment ->> 'source', p_payment ->> 'tender_type',
        coalesce(private.money(p_payment, 'amount'), 0), private.money(p_payment, 'tax'),
        private.money(p_payment, 'surcharge_amount'), private.money(p_payment, 'refunded_amount'),
        private.money(p_payment, 'settled_amount'), p_payment ->> 'currency',
        (p_payment ->> 'created')::timestamptz, (p_payment ->> 'settled_date')::timestamptz,
        p_payment ->> 'auth_code', p_payment ->> 'auth_message',
        (p_payment ->> 'response_code')::integer, p_payment ->> 'reference',
        p_payment ->> 'invoice_number', p_payment ->> 'client_reference',
        p_payment ->> 'customer_code', p_payment ->> 'customer_name',
        p_payment -> 'card' ->> 'card_type',
        case when p_payment -> 'card' ->> 'last4' ~ '^[0-9]{4}$' then p_payment -> 'card' ->> 'last4' end,
        p_payment ->> 'batch', coalesce(p_payment -> 'raw', '{}'), p_fetched_at, p_event_id
    )
    on conflict (id) do update
    set patient_id = coalesce(excluded.patient_id, p.patient_id),
        original_payment_id = coalesce(excluded.original_payment_id, p.original_payment_id),
        mx_original_id = excluded.mx_original_id,
        mx_invoice_ids = excluded.mx_invoice_ids,
        status = excluded.status,
        type = excluded.type,
        source = excluded.source,
        tender_type = excluded.tender_type,
        amount = excluded.amount,
        tax_amount = excluded.tax_amount,
        surcharge_amount = excluded.surcharge_amount,
        refunded_amount = excluded.refunded_amount,
        settled_amount = excluded.settled_amount,
        currency = excluded.currency,
        mx_created_at = excluded.mx_created_at,
        settled_at = excluded.settled_at,
        auth_code = excluded.auth_code,
        auth_message = excluded.auth_message,
        response_code = excluded.response_code,
        reference = excluded.reference,
        invoice_number = excluded.invoice_number,
        client_reference = excluded.client_reference,
        customer_code = excluded.customer_code,
        customer_name = excluded.customer_name,
        card_type = excluded.card_type,
        card_last4 = excluded.card_last4,
        batch = excluded.batch,
        raw = excluded.raw,
        fetched_at = excluded.fetched_at,
        source_event_id = excluded.source_event_id,
        updated_at = now()
    -- newest fetch wins; the event id breaks a tie deterministically
    where (p.fetched_at, p.source_event_id) < (excluded.fetched_at, excluded.source_event_id)
    returning true into v_applied;

    -- refunds stored before this sale arrived now point at it
    update app.payments as r
    set original_payment_id = v_id
    where r.mx_original_id = v_id
        and r.original_payment_id is null
        and r.practice_id = p_account.practice_id;
    return coalesce(v_applied, false);
end
$$;
comment on function private.upsert_payment(app.merchant_accounts, uuid, jsonb, timestamptz, bigint) is
'Upsert a payment unless the stored one was fetched later (ties: higher event id wins); refuses a payment '
'stored for another practice; keeps MX''s references (original sale, invoices) and links refunds to a sale '
'when it arrives.';

-- ---------------------------------------------------------------------------
-- Invoices and their lines
-- ---------------------------------------------------------------------------
create or replace function private.upsert_invoice(
    p_account app.merchant_accounts, p_patient_id uuid, p_invoice jsonb,
    p_fetched_at timestamptz, p_event_id bigint
)
returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
    v_invoice_id bigint := private.mx_id(p_invoice, 'id');
    v_stored_practice_id uuid;
    v_stored_account_id uuid;
    v_applied boolean;
begin
    if v_invoice_id is null then
        raise exception 'invoice without an id' using errcode = '22023';
    end if;
    -- a stored row never changes practice or merchant account (nor do its lines)
    select i.practice_id, i.merchant_account_id into v_stored_practice_id, v_stored_account_id
    from app.invoices as i where i.id = v_invoice_id;
    if found and (v_stored_practice_id, v_stored_account_id) is distinct from (p_account.practice_id, p_account.id) then
        raise exception 'invoice % is stored for another practice or merchant account; it is never moved', v_invoice_id
        using errcode = '23514';
    end if;

    insert into app.invoices as i (
        id, practice_id, merchant_account_id, patient_id, invoice_number, status, type, source_type,
        receipt_number, terms, total_amount, sub_total_amount, tax_amount, discount_amount, balance,
        paid_amount, invoice_date, due_date, mx_created_at, is_tax_exempt, memo, raw, fetched_at,
        source_event_id
    )
    values (
        v_invoice_id, p_account.practice_id, p_account.id, p_patient_id,
        p_invoice ->> 'invoice_number', p_invoice ->> 'status', p_invoice ->> 'type',
        p_invoice ->> 'source_type', p_invoice ->> 'receipt_number', p_invoice ->> 'terms',
        private.money(p_invoice, 'total_amount'), private.money(p_invoice, 'sub_total_amount'),
        private.money(p_invoice, 'tax_amount'), private.money(p_invoice, 'discount_amount'),
        private.money(p_invoice, 'balance'), private.money(p_invoice, 'paid_amount'),
        (p_invoice ->> 'invoice_date')::date, (p_invoice ->> 'due_date')::date,
        (p_invoice ->> 'created')::timestamptz, (p_invoice ->> 'is_tax_exempt')::boolean,
        p_invoice ->> 'memo', coalesce(p_invoice -> 'raw', '{}'), p_fetched_at, p_event_id
    )
    on conflict (id) do update
    set patient_id = coalesce(excluded.patient_id, i.patient_id),
        invoice_number = excluded.invoice_number,
        status = excluded.status,
        type = excluded.type,
        source_type = excluded.source_type,
        receipt_number = excluded.receipt_number,
        terms = excluded.terms,
        total_amount = excluded.total_amount,
        sub_total_amount = excluded.sub_total_amount,
        tax_amount = excluded.tax_amount,
        discount_amount = excluded.discount_amount,
        balance = excluded.balance,
        paid_amount = excluded.paid_amount,
        invoice_date = excluded.invoice_date,
        due_date = excluded.due_date,
        mx_created_at = excluded.mx_created_at,
        is_tax_exempt = excluded.is_tax_exempt,
        memo = excluded.memo,
        raw = excluded.raw,
        fetched_at = excluded.fetched_at,
        source_event_id = excluded.source_event_id,
        updated_at = now()
    where (i.fetched_at, i.source_event_id) < (excluded.fetched_at, excluded.source_event_id)
    returning true into v_applied;

    if coalesce(v_applied, false) then
        -- the lines are replaced with what MX holds now, every one of them; products first,
        -- in their own statement, so the insert below sees the ones created here
        perform private.upsert_product(p_account.practice_id, l.line ->> 'product_name')
        from jsonb_array_elements(coalesce(p_invoice -> 'purchases', '[]')) as l (line);
        delete from app.invoice_lines where invoice_id = v_invoice_id and practice_id = p_account.practice_id;
        insert into app.invoice_lines (
            invoice_id, line_no, practice_id, mx_purchase_id, mx_product_id, product_id, category_id,
            product_name, description, quantity, quantity_returned, price, sub_total_amount,
            tax_amount, discount_amount, total_amount
        )
        select
            v_invoice_id, l.ordinality::integer, p_account.practice_id,
            private.mx_id(l.line, 'id'), private.mx_id(l.line, 'product_id'), pr.id, pr.category_id,
            coalesce(nullif(trim(l.line ->> 'product_name'), ''), 'Unnamed product'),
            l.line ->> 'description',
            nullif(l.line ->> 'quantity', '')::numeric, nullif(l.line ->> 'quantity_returned', '')::numeric,
            private.money(l.line, 'price'), private.money(l.line, 'sub_total_amount'),
            private.money(l.line, 'tax_amount'), private.money(l.line, 'discount_amount'),
            private.money(l.line, 'total_amount')
        from jsonb_array_elements(coalesce(p_invoice -> 'purchases', '[]')) with ordinality as l (line, ordinality)
        inner join app.products as pr
            on pr.practice_id = p_account.practice_id
            and pr.name_key = private.name_key(
                coalesce(nullif(trim(l.line ->> 'product_name'), ''), 'Unnamed product')
            );
    end if;

    -- payments of this practice that named the invoice before it was stored now link to it
    -- (found through the GIN index alone: a practice filter in the same scan would tempt the
    -- planner to read every payment of the practice)
    with named as materialized (
        select p.id, p.practice_id from app.payments as p where p.mx_invoice_ids @> array[v_invoice_id]
    )
    insert into app.payment_invoices (payment_id, invoice_id, practice_id)
    select n.id, v_invoice_id, p_account.practice_id
    from named as n
    where n.practice_id = p_account.practice_id
    on conflict do nothing;
    return coalesce(v_applied, false);
end
$$;
comment on function private.upsert_invoice(app.merchant_accounts, uuid, jsonb, timestamptz, bigint) is
'Upsert an invoice and replace its lines, unless the stored one was fetched later; refuses an invoice stored '
'for another practice; links the payments that named it before it arrived.';
