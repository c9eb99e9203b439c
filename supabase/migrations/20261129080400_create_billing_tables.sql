-- What MX Merchant knows: patients (MX customers), products, payments, invoices with
-- every purchase line, and recurring contracts. Written only by the worker's
-- procedures; members of the practice read them.
-- Ordering: every MX record keeps the time it was fetched from MX and the event that
-- fetched it; an upsert applies only when (fetched_at, source_event_id) is newer, so a
-- late or repeated event never overwrites a newer state.

create function private.name_key(name text)
returns text
language sql
immutable
set search_path = ''
as $$
    select lower(regexp_replace(trim(name), '\s+', ' ', 'g'))
$$;
comment on function private.name_key(text) is
'How names are compared: case-insensitive, surrounding and repeated spaces ignored.';

create table app.patients (
    id uuid primary key default gen_random_uuid(),
    practice_id uuid not null references app.practices (id) on delete cascade,
    mx_customer_id bigint,
    customer_code text,
    name text not null,
    name_key text generated always as (private.name_key(name)) stored,
    email text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index patients_practice_customer_idx on app.patients (practice_id, mx_customer_id)
where mx_customer_id is not null;
-- Without an MX customer id a patient is known by name within the practice.
create unique index patients_practice_name_without_id_idx on app.patients (practice_id, name_key)
where mx_customer_id is null;
create index patients_practice_name_idx on app.patients (practice_id, name_key);
comment on table app.patients is 'A patient: an MX Merchant customer of one practice.';

create trigger patients_touch_updated_at
before update on app.patients
for each row execute function private.touch_updated_at();

create table app.products (
    id uuid primary key default gen_random_uuid(),
    practice_id uuid not null references app.practices (id) on delete cascade,
    name text not null,
    name_key text generated always as (private.name_key(name)) stored,
    category_id uuid not null,
    suggested_category_id uuid,
    category_confirmed boolean not null default false,
    first_seen_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (practice_id, name_key),
    foreign key (practice_id, category_id) references app.categories (practice_id, id),
    foreign key (practice_id, suggested_category_id) references app.categories (practice_id, id)
);
create index products_category_id_idx on app.products (category_id);
comment on table app.products is
'A product name as sold by a practice, and the programme it belongs to (Uncategorized until set).';

create table app.payments (
    id bigint primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    merchant_account_id uuid not null references app.merchant_accounts (id),
    patient_id uuid references app.patients (id),
    original_payment_id bigint references app.payments (id),
    status text not null,
    type text not null,
    source text,
    tender_type text,
    amount numeric(12, 2) not null,
    tax_amount numeric(12, 2),
    surcharge_amount numeric(12, 2),
    refunded_amount numeric(12, 2),
    settled_amount numeric(12, 2),
    currency text,
    mx_created_at timestamptz not null,
    settled_at timestamptz,
    auth_code text,
    auth_message text,
    response_code integer,
    reference text,
    invoice_number text,
    client_reference text,
    customer_code text,
    customer_name text,
    card_type text,
    card_last4 text check (card_last4 ~ '^[0-9]{4}$'),
    batch text,
    raw jsonb not null,
    fetched_at timestamptz not null,
    source_event_id bigint not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index payments_practice_created_idx on app.payments (practice_id, mx_created_at desc, id desc);
create index payments_patient_created_idx on app.payments (patient_id, mx_created_at desc, id desc);
create index payments_original_payment_id_idx on app.payments (original_payment_id)
where original_payment_id is not null;
comment on table app.payments is 'A payment as MX Merchant returned it (sales, declines, refunds).';

create table app.invoices (
    id bigint primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    merchant_account_id uuid not null references app.merchant_accounts (id),
    patient_id uuid references app.patients (id),
    invoice_number text,
    status text,
    type text,
    source_type text,
    receipt_number text,
    terms text,
    total_amount numeric(12, 2),
    sub_total_amount numeric(12, 2),
    tax_amount numeric(12, 2),
    discount_amount numeric(12, 2),
    balance numeric(12, 2),
    paid_amount numeric(12, 2),
    invoice_date date,
    due_date date,
    mx_created_at timestamptz,
    is_tax_exempt boolean,
    memo text,
    raw jsonb not null,
    fetched_at timestamptz not null,
    source_event_id bigint not null,
    -- the nurses' follow-up, entered by staff
    data_sent_status text not null default 'pending' check (data_sent_status in ('pending', 'yes', 'no')),
    data_sent_at timestamptz,
    data_sent_notes text,
    ordered_by_provider_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index invoices_practice_date_idx on app.invoices (practice_id, invoice_date desc, id desc);
create index invoices_patient_id_idx on app.invoices (patient_id);
comment on table app.invoices is 'An MX Merchant invoice, plus the practice''s pharmacy follow-up fields.';

create table app.invoice_lines (
    invoice_id bigint not null references app.invoices (id) on delete cascade,
    line_no integer not null,
    practice_id uuid not null references app.practices (id) on delete cascade,
    mx_purchase_id bigint,
    mx_product_id bigint,
    product_id uuid not null references app.products (id),
    category_id uuid not null,
    product_name text not null,
    description text,
    quantity numeric(12, 3),
    quantity_returned numeric(12, 3),
    price numeric(12, 2),
    sub_total_amount numeric(12, 2),
    tax_amount numeric(12, 2),
    discount_amount numeric(12, 2),
    total_amount numeric(12, 2),
    primary key (invoice_id, line_no),
    foreign key (practice_id, category_id) references app.categories (practice_id, id)
);
create index invoice_lines_practice_id_idx on app.invoice_lines (practice_id);
create index invoice_lines_product_id_idx on app.invoice_lines (product_id);
create index invoice_lines_category_id_idx on app.invoice_lines (category_id);
comment on table app.invoice_lines is 'Every purchase line of an invoice, with the programme its product maps to.';

create table app.payment_invoices (
    payment_id bigint not null references app.payments (id) on delete cascade,
    invoice_id bigint not null references app.invoices (id) on delete cascade,
    practice_id uuid not null references app.practices (id) on delete cascade,
    primary key (payment_id, invoice_id)
);
create index payment_invoices_practice_id_idx on app.payment_invoices (practice_id);
create index payment_invoices_invoice_id_idx on app.payment_invoices (invoice_id);
comment on table app.payment_invoices is 'Which invoices a payment paid (a payment''s invoiceIds).';

create table app.contracts (
    id bigint primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    merchant_account_id uuid not null references app.merchant_accounts (id),
    patient_id uuid references app.patients (id),
    subscription_id bigint,
    name text,
    customer_name text,
    billing_interval text,
    every text,
    bill_on text,
    amount numeric(12, 2),
    type text,
    -- MX's status verbatim: unknown values are data, not errors
    status text,
    status_changed_at timestamptz,
    start_date date,
    next_bill_date date,
    last_invoice_date date,
    has_declined_payment boolean,
    currency_code text,
    raw jsonb not null,
    fetched_at timestamptz not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index contracts_practice_id_idx on app.contracts (practice_id);
create index contracts_patient_id_idx on app.contracts (patient_id);
comment on table app.contracts is 'An MX Merchant recurring-billing contract.';

-- ---------------------------------------------------------------------------
-- Row-level security: members of the practice read; nobody but the worker's
-- definer procedures writes (except the follow-up columns of invoices).
-- ---------------------------------------------------------------------------
alter table app.patients enable row level security;
alter table app.products enable row level security;
alter table app.payments enable row level security;
alter table app.invoices enable row level security;
alter table app.invoice_lines enable row level security;
alter table app.payment_invoices enable row level security;
alter table app.contracts enable row level security;

grant select on app.patients, app.products, app.invoice_lines, app.payment_invoices, app.contracts
to authenticated;
-- raw MX JSON stays server-side: it may hold fields no screen needs.
grant select (
    id, practice_id, merchant_account_id, patient_id, original_payment_id, status, type, source,
    tender_type, amount, tax_amount, surcharge_amount, refunded_amount, settled_amount, currency,
    mx_created_at, settled_at, auth_code, auth_message, response_code, reference, invoice_number,
    client_reference, customer_code, customer_name, card_type, card_last4, batch, updated_at
) on app.payments to authenticated;
grant select (
    id, practice_id, merchant_account_id, patient_id, invoice_number, status, type, source_type,
    receipt_number, terms, total_amount, sub_total_amount, tax_amount, discount_amount, balance,
    paid_amount, invoice_date, due_date, mx_created_at, is_tax_exempt, memo, data_sent_status,
    data_sent_at, data_sent_notes, ordered_by_provider_at, updated_at
) on app.invoices to authenticated;

create policy patients_select on app.patients
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy products_select on app.products
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy payments_select on app.payments
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy invoices_select on app.invoices
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy invoice_lines_select on app.invoice_lines
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy payment_invoices_select on app.payment_invoices
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

create policy contracts_select on app.contracts
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));
