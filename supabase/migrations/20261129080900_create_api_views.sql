-- The api schema: what PostgREST exposes. Views run as the caller
-- (security_invoker), so the row-level security of app applies to every read.

create view api.practices with (security_invoker = true) as
select
    p.id,
    p.name,
    p.slug,
    p.timezone,
    p.auto_apply_suggestions,
    p.past_due_grace_days,
    p.created_at
from app.practices as p;
comment on view api.practices is 'Practices of the requesting user.';

create view api.practice_members with (security_invoker = true) as
select
    m.practice_id,
    m.user_id,
    m.role,
    m.created_at
from app.practice_members as m;
comment on view api.practice_members is 'Members of the requesting user''s practices.';

create view api.categories with (security_invoker = true) as
select
    c.id,
    c.practice_id,
    c.name,
    c.kind,
    c.sort_order
from app.categories as c;
comment on view api.categories is 'Programmes of the requesting user''s practices.';

create view api.merchant_accounts with (security_invoker = true) as
select
    m.id,
    m.practice_id,
    m.mx_merchant_id,
    m.name,
    m.environment,
    m.is_active,
    m.credentials_failed_at,
    m.credentials_error,
    m.created_at
from app.merchant_accounts as m;
comment on view api.merchant_accounts is 'MX merchant accounts (never their credentials).';

create view api.patients with (security_invoker = true) as
select
    p.id,
    p.practice_id,
    p.mx_customer_id,
    p.customer_code,
    p.name,
    p.email,
    p.created_at
from app.patients as p;
comment on view api.patients is 'Patients of the requesting user''s practices.';

create view api.products with (security_invoker = true) as
select
    p.id,
    p.practice_id,
    p.name,
    p.category_id,
    c.name as category_name,
    p.suggested_category_id,
    p.category_confirmed,
    p.first_seen_at
from app.products as p
inner join app.categories as c on p.category_id = c.id;
comment on view api.products is 'Products and the programme each maps to.';

create view api.payments with (security_invoker = true) as
select
    p.id,
    p.practice_id,
    p.patient_id,
    p.original_payment_id,
    p.status,
    p.type,
    p.source,
    p.tender_type,
    p.amount,
    p.tax_amount,
    p.refunded_amount,
    p.settled_amount,
    p.currency,
    p.mx_created_at,
    p.settled_at,
    p.auth_code,
    p.response_code,
    p.invoice_number,
    p.customer_name,
    p.card_type,
    p.card_last4
from app.payments as p;
comment on view api.payments is 'Payments (sales, declines, refunds), card shown by last four only.';

create view api.invoices with (security_invoker = true) as
select
    i.id,
    i.practice_id,
    i.patient_id,
    i.invoice_number,
    i.status,
    i.type,
    i.source_type,
    i.total_amount,
    i.paid_amount,
    i.balance,
    i.invoice_date,
    i.due_date,
    i.data_sent_status,
    i.data_sent_at,
    i.data_sent_notes,
    i.ordered_by_provider_at
from app.invoices as i;
comment on view api.invoices is 'Invoices and the nurses'' pharmacy follow-up.';

create view api.invoice_lines with (security_invoker = true) as
select
    l.invoice_id,
    l.line_no,
    l.practice_id,
    l.product_id,
    l.product_name,
    l.category_id,
    c.name as category_name,
    l.quantity,
    l.price,
    l.total_amount
from app.invoice_lines as l
inner join app.categories as c on l.category_id = c.id;
comment on view api.invoice_lines is 'Every purchase line of an invoice with its programme.';

create view api.memberships with (security_invoker = true) as
select
    m.id,
    m.practice_id,
    m.patient_id,
    pt.name as patient_name,
    m.category_id,
    c.name as category_name,
    m.status,
    m.status_source,
    m.status_changed_at,
    m.started_on,
    m.last_paid_at,
    m.next_billing_on,
    m.canceled_at,
    m.amount,
    m.billing_interval,
    m.product_names,
    m.google_review_submitted,
    m.google_review_at,
    m.referral_source,
    m.fulfillment,
    m.notes
from app.memberships as m
inner join app.patients as pt on m.patient_id = pt.id
inner join app.categories as c on m.category_id = c.id;
comment on view api.memberships is 'Memberships with patient and programme names.';

create view api.membership_events with (security_invoker = true) as
select
    e.id,
    e.practice_id,
    e.membership_id,
    e.old_status,
    e.new_status,
    e.source,
    e.reason,
    e.actor_user_id,
    e.evidence_at,
    e.recorded_at
from app.membership_events as e;
comment on view api.membership_events is 'History of membership status changes.';

grant select on all tables in schema api to authenticated;
