-- The worker's procedures: claim queued events, apply what MX returned, retry later,
-- or dead-letter. Each is one call and one transaction.

-- Read a batch from the ingest queue and count the attempt on each event. The project
-- counts attempts itself: pgmq's read_ct counts reads, not failures.
create function private.claim_ingest_events(p_quantity integer, p_visibility_seconds integer)
returns table (
    msg_id bigint,
    event_id bigint,
    attempts integer,
    event_type text,
    payment_id bigint,
    merchant_account_id uuid,
    mx_merchant_id bigint
)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_msg_ids bigint[];
    v_event_ids bigint[];
begin
    select array_agg(r.msg_id), array_agg((r.message ->> 'event_id')::bigint)
    into v_msg_ids, v_event_ids
    from private.queue_read('mx_ingest', p_visibility_seconds, p_quantity) as r;

    -- a message whose event is gone (pruned, or already finished) is archived, not worked
    perform private.queue_archive('mx_ingest', c.msg_id)
    from unnest(v_msg_ids, v_event_ids) as c (msg_id, event_id)
    left join app.webhook_events as e on e.id = c.event_id
    where e.id is null or e.status not in ('queued', 'retrying');

    return query
    update app.webhook_events as e
    set attempts = e.attempts + 1
    from unnest(v_msg_ids, v_event_ids) as c (msg_id, event_id)
    where e.id = c.event_id and e.status in ('queued', 'retrying')
    returning c.msg_id, e.id, e.attempts, e.event_type, e.payment_id, e.merchant_account_id,
        e.mx_merchant_id;
end
$$;
comment on function private.claim_ingest_events(integer, integer) is
'Worker: read up to p_quantity queued events, hidden for p_visibility_seconds, attempts counted.';

create function private.extend_ingest_visibility(p_msg_id bigint, p_seconds integer)
returns void
language sql
security definer
set search_path = ''
as $$
    select private.queue_set_visibility('mx_ingest', p_msg_id, p_seconds)
$$;
comment on function private.extend_ingest_visibility(bigint, integer) is
'Worker: keep a long job''s message hidden for p_seconds more.';

create function private.retry_ingest_event(
    p_msg_id bigint, p_event_id bigint, p_error text, p_delay_seconds integer
)
returns void
language sql
security definer
set search_path = ''
as $$
    update app.webhook_events
    set status = 'retrying', last_error = left(p_error, 2000)
    where id = p_event_id and status in ('queued', 'retrying');
    select private.queue_set_visibility('mx_ingest', p_msg_id, p_delay_seconds);
$$;
comment on function private.retry_ingest_event(bigint, bigint, text, integer) is
'Worker: a transient failure; the message comes back after p_delay_seconds.';

create function private.dead_letter_ingest_event(
    p_msg_id bigint, p_event_id bigint, p_reason text, p_credentials_failed boolean default false
)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_event app.webhook_events;
begin
    update app.webhook_events
    set status = 'dead', last_error = left(p_reason, 2000), processed_at = now()
    where id = p_event_id and status in ('queued', 'retrying')
    returning * into v_event;
    if found then
        perform private.queue_send(
            'mx_ingest_dlq',
            jsonb_build_object(
                'event_id', v_event.id, 'reason', left(p_reason, 2000), 'attempts', v_event.attempts,
                'mx_merchant_id', v_event.mx_merchant_id, 'payment_id', v_event.payment_id
            )
        );
        if p_credentials_failed then
            update app.merchant_accounts
            set credentials_failed_at = now(), credentials_error = left(p_reason, 500)
            where id = v_event.merchant_account_id;
        end if;
    end if;
    perform private.queue_archive('mx_ingest', p_msg_id);
end
$$;
comment on function private.dead_letter_ingest_event(bigint, bigint, text, boolean) is
'Worker: a permanent failure or attempts exhausted; the event goes to the dead-letter queue.';

-- ---------------------------------------------------------------------------
-- Upserts of MX records. p_* are the canonical JSON the worker builds from MX's answers
-- (worker/mx/models.py canonical()): snake_case, money as decimal strings, ISO times.
-- ---------------------------------------------------------------------------
create function private.money(p jsonb, key text)
returns numeric
language sql
immutable
set search_path = ''
as $$
    select nullif(p ->> key, '')::numeric(12, 2)
$$;
comment on function private.money(jsonb, text) is 'A canonical money field as numeric(12,2).';

create function private.upsert_patient(
    p_practice_id uuid, p_mx_customer_id bigint, p_name text, p_customer_code text
)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_name text := nullif(trim(p_name), '');
    v_key text := private.name_key(p_name);
    v_id uuid;
begin
    if v_name is null and p_mx_customer_id is null then
        return null;
    end if;
    -- one patient identity at a time per practice: concurrent events for the same
    -- person must not create two rows
    perform pg_advisory_xact_lock(hashtextextended(p_practice_id::text || coalesce(v_key, ''), 0));

    if p_mx_customer_id is not null then
        select id into v_id from app.patients
        where practice_id = p_practice_id and mx_customer_id = p_mx_customer_id;
        if v_id is null and v_key is not null then
            -- known so far by name only: attach the MX customer id
            update app.patients set mx_customer_id = p_mx_customer_id
            where practice_id = p_practice_id and name_key = v_key and mx_customer_id is null
            returning id into v_id;
        end if;
        if v_id is null then
            insert into app.patients (practice_id, mx_customer_id, name, customer_code)
            values (p_practice_id, p_mx_customer_id, coalesce(v_name, 'Customer ' || p_mx_customer_id),
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
'Find or create a patient by MX customer id, else by name within the practice.';

create function private.upsert_product(p_practice_id uuid, p_name text)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_id uuid;
    v_name text := coalesce(nullif(trim(p_name), ''), 'Unnamed product');
begin
    select id into v_id from app.products
    where practice_id = p_practice_id
        and name_key = private.name_key(v_name);
    if v_id is null then
        insert into app.products (practice_id, name, category_id)
        values (p_practice_id, v_name, private.uncategorized_id(p_practice_id))
        on conflict (practice_id, name_key) do nothing
        returning id into v_id;
        if v_id is null then
            select id into v_id from app.products
            where practice_id = p_practice_id
                and name_key = private.name_key(v_name);
        end if;
    end if;
    return v_id;
end
$$;
comment on function private.upsert_product(uuid, text) is
'Find or create a product of a practice; a new product starts Uncategorized.';

create function private.upsert_payment(
    p_account app.merchant_accounts, p_patient_id uuid, p_payment jsonb,
    p_fetched_at timestamptz, p_event_id bigint
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_applied boolean;
begin
    insert into app.payments as p (
        id, practice_id, merchant_account_id, patient_id, original_payment_id, status, type, source,
        tender_type, amount, tax_amount, surcharge_amount, refunded_amount, settled_amount,
        currency, mx_created_at, settled_at, auth_code, auth_message, response_code, reference,
        invoice_number, client_reference, customer_code, customer_name, card_type, card_last4,
        batch, raw, fetched_at, source_event_id
    )
    values (
        (p_payment ->> 'id')::bigint, p_account.practice_id, p_account.id, p_patient_id,
        (p_payment ->> 'original_id')::bigint,
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
        original_payment_id = excluded.original_payment_id,
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
    return coalesce(v_applied, false);
end
$$;
comment on function private.upsert_payment(app.merchant_accounts, uuid, jsonb, timestamptz, bigint) is
'Upsert a payment unless the stored one was fetched later (ties: higher event id wins).';

create function private.upsert_invoice(
    p_account app.merchant_accounts, p_patient_id uuid, p_invoice jsonb,
    p_fetched_at timestamptz, p_event_id bigint
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_invoice_id bigint := (p_invoice ->> 'id')::bigint;
    v_applied boolean;
begin
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
        delete from app.invoice_lines where invoice_id = v_invoice_id;
        insert into app.invoice_lines (
            invoice_id, line_no, practice_id, mx_purchase_id, mx_product_id, product_id, category_id,
            product_name, description, quantity, quantity_returned, price, sub_total_amount,
            tax_amount, discount_amount, total_amount
        )
        select
            v_invoice_id, l.ordinality::integer, p_account.practice_id,
            (l.line ->> 'id')::bigint, (l.line ->> 'product_id')::bigint, pr.id, pr.category_id,
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
    return coalesce(v_applied, false);
end
$$;
comment on function private.upsert_invoice(app.merchant_accounts, uuid, jsonb, timestamptz, bigint) is
'Upsert an invoice and replace its lines, unless the stored one was fetched later.';

-- ---------------------------------------------------------------------------
-- The worker's one call per payment event.
-- ---------------------------------------------------------------------------
create function private.apply_payment_event(
    p_msg_id bigint,
    p_event_id bigint,
    p_fetched_at timestamptz,
    p_payment jsonb,
    p_invoices jsonb default '[]',
    p_related_payments jsonb default '[]'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_event app.webhook_events;
    v_account app.merchant_accounts;
    v_patient_id uuid;
    v_customer jsonb;
    v_related jsonb;
    v_invoice jsonb;
    v_payment_id bigint := (p_payment ->> 'id')::bigint;
    v_category_id uuid;
    v_memberships integer := 0;
begin
    select * into v_event from app.webhook_events where id = p_event_id for update;
    if not found or v_event.status not in ('queued', 'retrying') then
        -- already finished by another worker (a redelivered message): nothing to apply
        perform private.queue_archive('mx_ingest', p_msg_id);
        return jsonb_build_object('outcome', 'already_finished');
    end if;
    select * into v_account from app.merchant_accounts where id = v_event.merchant_account_id;

    if (p_payment ->> 'merchant_id')::bigint is distinct from v_account.mx_merchant_id then
        raise exception 'payment % belongs to merchant %, not %',
            v_payment_id, p_payment ->> 'merchant_id', v_account.mx_merchant_id
        using errcode = '22023';
    end if;

    -- the patient: the invoice's customer id when there is one, else the payment's name
    v_customer := coalesce(p_invoices -> 0 -> 'customer', '{}');
    v_patient_id := private.upsert_patient(
        v_account.practice_id,
        (v_customer ->> 'id')::bigint,
        coalesce(nullif(v_customer ->> 'name', ''), p_payment ->> 'customer_name'),
        p_payment ->> 'customer_code'
    );
    if v_patient_id is not null then
        -- one patient's events apply one at a time, so memberships are computed from
        -- everything committed before
        perform pg_advisory_xact_lock(hashtextextended(v_patient_id::text, 1));
    end if;

    -- a refund names its sale: upsert the sale first (fetched by the worker)
    for v_related in select value from jsonb_array_elements(p_related_payments) loop
        perform private.upsert_payment(v_account, v_patient_id, v_related, p_fetched_at, p_event_id);
    end loop;
    perform private.upsert_payment(v_account, v_patient_id, p_payment, p_fetched_at, p_event_id);

    for v_invoice in select value from jsonb_array_elements(p_invoices) loop
        perform private.upsert_invoice(v_account, v_patient_id, v_invoice, p_fetched_at, p_event_id);
        insert into app.payment_invoices (payment_id, invoice_id, practice_id)
        values (v_payment_id, (v_invoice ->> 'id')::bigint, v_account.practice_id)
        on conflict do nothing;
    end loop;

    if v_patient_id is not null then
        for v_category_id in
            select distinct l.category_id
            from app.payment_invoices as pi
            inner join app.invoice_lines as l on l.invoice_id = pi.invoice_id
            where pi.payment_id = any(
                array[v_payment_id] || array(
                    select (r ->> 'id')::bigint from jsonb_array_elements(p_related_payments) as r
                )
            )
        loop
            perform private.refresh_membership_from_payments(
                v_account.practice_id, v_patient_id, v_category_id
            );
            v_memberships := v_memberships + 1;
        end loop;
    end if;

    update app.webhook_events
    set status = 'processed', processed_at = now(), last_error = null
    where id = p_event_id;
    perform private.queue_archive('mx_ingest', p_msg_id);

    return jsonb_build_object(
        'outcome', 'processed', 'payment_id', v_payment_id, 'patient_id', v_patient_id,
        'invoices', jsonb_array_length(p_invoices), 'memberships', v_memberships
    );
end
$$;
comment on function private.apply_payment_event(bigint, bigint, timestamptz, jsonb, jsonb, jsonb) is
'Worker: apply what MX returned for one event (patient, payment, invoices, lines, memberships), '
'mark the event processed and archive its message, in one transaction.';
