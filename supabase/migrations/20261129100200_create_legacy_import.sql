-- Import from the legacy database (python -m worker legacy import): merchant configs,
-- product programmes, and the workflow fields staff entered by hand there.
--
-- Rules (docs/operations.md, "Legacy import"):
--   * the import fills blanks, it never overwrites what the new database already holds:
--     a field set here (by staff or an earlier import) wins over the legacy value;
--     google_review_submitted only ever goes from false to true; data_sent_status only
--     from 'pending'; a product whose programme was confirmed here keeps it (conflict);
--   * the legacy membership_status becomes a staff decision only when it is 'paused' or
--     'canceled', differs from the status here, no staff decision exists here, and no payment
--     evidence here is newer than the legacy row (a patient who paid since was not canceled);
--     'active' is never imported as a decision (legacy rows defaulted to it);
--   * rows whose membership or invoice does not exist here yet are staged in
--     app.legacy_workflow_pending and applied by triggers when the membership or invoice
--     is created (private.apply_pending_legacy_workflow sweeps them too);
--   * every function returns an outcome (created, updated, unchanged, conflict, skipped,
--     pending, still_pending) so the command can report counts, and a second import of the
--     same legacy data changes nothing.

create table app.legacy_workflow_pending (
    id bigint generated always as identity primary key,
    practice_id uuid not null references app.practices (id) on delete cascade,
    kind text not null check (kind in ('membership', 'invoice')),
    -- invoice:<mx invoice id> | membership:<customer id or name key>:<category id>
    match_key text not null,
    mx_invoice_id bigint,
    mx_customer_id bigint,
    patient_name_key text,
    category_id uuid,
    fields jsonb not null,
    legacy_updated_at timestamptz,
    staged_at timestamptz not null default now(),
    applied_at timestamptz,
    unique (practice_id, kind, match_key),
    check ((kind = 'invoice') = (mx_invoice_id is not null)),
    check ((kind = 'membership') = (category_id is not null))
);
create index legacy_workflow_pending_invoice_idx on app.legacy_workflow_pending (mx_invoice_id)
where kind = 'invoice' and applied_at is null;
create index legacy_workflow_pending_membership_idx on app.legacy_workflow_pending (practice_id, category_id)
where kind = 'membership' and applied_at is null;
comment on table app.legacy_workflow_pending is
'Workflow fields from the legacy database waiting for their membership or invoice to exist here.';

alter table app.legacy_workflow_pending enable row level security;
-- No client grant: only the import and the definer triggers below touch it.

-- ---------------------------------------------------------------------------
-- Applying legacy values (fill blanks only)
-- ---------------------------------------------------------------------------
create function private.apply_legacy_membership_fields(
    p_membership_id uuid, p_fields jsonb, p_legacy_at timestamptz
)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_m app.memberships;
    v_review boolean := (p_fields ->> 'google_review_submitted')::boolean;
    v_referral text := nullif(p_fields ->> 'referral_source', '');
    v_fulfillment text := nullif(p_fields ->> 'fulfillment', '');
    v_status text := nullif(p_fields ->> 'membership_status', '');
    v_changed boolean := false;
begin
    select * into v_m from app.memberships where id = p_membership_id for update;
    if not found then
        return false;
    end if;
    if v_referral is not null and not exists (
        select from app.referral_sources as r where r.practice_id = v_m.practice_id and r.code = v_referral
    ) then
        v_referral := 'other';
    end if;
    if v_fulfillment not in ('in_office', 'mail_out') then
        v_fulfillment := null;
    end if;

    if (v_review and not v_m.google_review_submitted)
        or (v_referral is not null and v_m.referral_source is null)
        or (v_fulfillment is not null and v_m.fulfillment is null) then
        update app.memberships as m
        set google_review_submitted = m.google_review_submitted or coalesce(v_review, false),
            google_review_at = case
                when v_review and not m.google_review_submitted then coalesce(p_legacy_at, now())
                else m.google_review_at
            end,
            referral_source = coalesce(m.referral_source, v_referral),
            fulfillment = coalesce(m.fulfillment, v_fulfillment)
        where m.id = p_membership_id;
        v_changed := true;
    end if;

    if v_status in ('paused', 'canceled')
        and v_status <> v_m.status
        and v_m.staff_status is null
        and (v_m.payment_evidence_at is null or v_m.payment_evidence_at <= coalesce(p_legacy_at, now())) then
        update app.memberships
        set staff_status = v_status,
            staff_reason = 'legacy import',
            staff_decided_at = coalesce(p_legacy_at, now())
        where id = p_membership_id;
        perform private.settle_membership_status(p_membership_id);
        v_changed := true;
    end if;
    return v_changed;
end
$$;
comment on function private.apply_legacy_membership_fields(uuid, jsonb, timestamptz) is
'Fill a membership''s blank workflow fields from legacy values; a legacy paused/canceled becomes '
'a staff decision when nothing here contradicts it. Returns whether anything changed.';

create function private.apply_legacy_invoice_fields(p_invoice_id bigint, p_fields jsonb)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_status text := nullif(p_fields ->> 'data_sent_status', '');
    v_sent_at timestamptz := (nullif(p_fields ->> 'data_sent_at', ''))::timestamptz;
    v_notes text := nullif(p_fields ->> 'data_sent_notes', '');
    v_ordered_at timestamptz := (nullif(p_fields ->> 'ordered_by_provider_at', ''))::timestamptz;
begin
    if v_status not in ('yes', 'no') then
        v_status := null;
    end if;
    update app.invoices as i
    set data_sent_status = case when i.data_sent_status = 'pending' then coalesce(v_status, 'pending') else i.data_sent_status end,
        data_sent_at = coalesce(i.data_sent_at, v_sent_at),
        data_sent_notes = coalesce(nullif(i.data_sent_notes, ''), v_notes, i.data_sent_notes),
        ordered_by_provider_at = coalesce(i.ordered_by_provider_at, v_ordered_at)
    where i.id = p_invoice_id
        and (
            (i.data_sent_status = 'pending' and v_status is not null)
            or (i.data_sent_at is null and v_sent_at is not null)
            or (nullif(i.data_sent_notes, '') is null and v_notes is not null)
            or (i.ordered_by_provider_at is null and v_ordered_at is not null)
        );
    return found;
end
$$;
comment on function private.apply_legacy_invoice_fields(bigint, jsonb) is
'Fill an invoice''s blank pharmacy follow-up fields from legacy values; returns whether anything changed.';

-- ---------------------------------------------------------------------------
-- Matching
-- ---------------------------------------------------------------------------
create function private.legacy_category_id(p_practice_id uuid, p_product_name text, p_category_name text)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
    select coalesce(
        (
            select p.category_id from app.products as p
            where p.practice_id = p_practice_id and p.name_key = private.name_key(p_product_name)
                and p.category_id <> private.uncategorized_id(p_practice_id)
        ),
        (
            select c.id from app.categories as c
            where c.practice_id = p_practice_id and lower(c.name) = lower(trim(p_category_name))
        ),
        private.uncategorized_id(p_practice_id)
    )
$$;
comment on function private.legacy_category_id(uuid, text, text) is
'The programme of a legacy row: its product''s programme here, else the legacy category by name, '
'else Uncategorized.';

create function private.find_legacy_membership(
    p_practice_id uuid, p_mx_customer_id bigint, p_name_key text, p_category_id uuid
)
returns uuid
language sql
stable
security definer
set search_path = ''
as $$
    select m.id
    from app.memberships as m
    inner join app.patients as pt on pt.id = m.patient_id
    where m.practice_id = p_practice_id
        and m.category_id = p_category_id
        and (pt.mx_customer_id = p_mx_customer_id or pt.name_key = p_name_key)
    order by (pt.mx_customer_id = p_mx_customer_id) desc nulls last, m.created_at
    limit 1
$$;
comment on function private.find_legacy_membership(uuid, bigint, text, uuid) is
'The membership a legacy row belongs to: same programme, patient by MX customer id or by name.';

-- ---------------------------------------------------------------------------
-- Staging (called by the import, one legacy row each)
-- ---------------------------------------------------------------------------
create function private.stage_legacy_membership(
    p_practice_id uuid,
    p_customer_name text,
    p_mx_customer_id bigint,
    p_product_name text,
    p_category_name text,
    p_fields jsonb,
    p_legacy_at timestamptz
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_category_id uuid := private.legacy_category_id(p_practice_id, p_product_name, p_category_name);
    v_name_key text := private.name_key(p_customer_name);
    v_membership_id uuid;
    v_match text;
    v_pending app.legacy_workflow_pending;
begin
    if v_name_key is null and p_mx_customer_id is null then
        return 'skipped';
    end if;
    v_membership_id := private.find_legacy_membership(p_practice_id, p_mx_customer_id, v_name_key, v_category_id);
    if v_membership_id is not null then
        return case
            when private.apply_legacy_membership_fields(v_membership_id, p_fields, p_legacy_at) then 'updated'
            else 'unchanged'
        end;
    end if;

    v_match := format('membership:%s:%s', coalesce(p_mx_customer_id::text, v_name_key), v_category_id);
    select * into v_pending from app.legacy_workflow_pending
    where practice_id = p_practice_id and kind = 'membership' and match_key = v_match;
    if found and v_pending.fields = p_fields
        and v_pending.legacy_updated_at is not distinct from p_legacy_at then
        return 'still_pending';
    end if;
    insert into app.legacy_workflow_pending (
        practice_id, kind, match_key, mx_customer_id, patient_name_key, category_id, fields, legacy_updated_at
    )
    values (
        p_practice_id, 'membership', v_match, p_mx_customer_id, v_name_key, v_category_id, p_fields, p_legacy_at
    )
    on conflict (practice_id, kind, match_key) do update
    set fields = excluded.fields,
        legacy_updated_at = excluded.legacy_updated_at,
        staged_at = now(),
        applied_at = null;
    return 'pending';
end
$$;
comment on function private.stage_legacy_membership(uuid, text, bigint, text, text, jsonb, timestamptz) is
'Import one legacy patient+product''s workflow fields: applied to the membership now, or staged '
'until it exists. Returns updated, unchanged, pending, still_pending or skipped.';

create function private.stage_legacy_invoice(p_practice_id uuid, p_mx_invoice_id bigint, p_fields jsonb)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_pending app.legacy_workflow_pending;
begin
    if exists (select from app.invoices where id = p_mx_invoice_id and practice_id = p_practice_id) then
        return case
            when private.apply_legacy_invoice_fields(p_mx_invoice_id, p_fields) then 'updated'
            else 'unchanged'
        end;
    end if;
    select * into v_pending from app.legacy_workflow_pending
    where practice_id = p_practice_id and kind = 'invoice' and match_key = 'invoice:' || p_mx_invoice_id;
    if found and v_pending.fields = p_fields then
        return 'still_pending';
    end if;
    insert into app.legacy_workflow_pending (practice_id, kind, match_key, mx_invoice_id, fields)
    values (p_practice_id, 'invoice', 'invoice:' || p_mx_invoice_id, p_mx_invoice_id, p_fields)
    on conflict (practice_id, kind, match_key) do update
    set fields = excluded.fields, staged_at = now(), applied_at = null;
    return 'pending';
end
$$;
comment on function private.stage_legacy_invoice(uuid, bigint, jsonb) is
'Import one legacy invoice''s follow-up: applied now, or staged until the invoice exists. '
'Returns updated, unchanged, pending, still_pending.';

-- ---------------------------------------------------------------------------
-- Applying staged rows when their targets appear
-- ---------------------------------------------------------------------------
create function private.apply_pending_legacy_workflow(p_practice_id uuid default null)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row app.legacy_workflow_pending;
    v_membership_id uuid;
    v_applied integer := 0;
begin
    for v_row in
        select * from app.legacy_workflow_pending as p
        where p.applied_at is null and (p_practice_id is null or p.practice_id = p_practice_id)
        order by p.id
        for update skip locked
    loop
        if v_row.kind = 'invoice' then
            if not exists (
                select from app.invoices where id = v_row.mx_invoice_id and practice_id = v_row.practice_id
            ) then
                continue;
            end if;
            perform private.apply_legacy_invoice_fields(v_row.mx_invoice_id, v_row.fields);
        else
            v_membership_id := private.find_legacy_membership(
                v_row.practice_id, v_row.mx_customer_id, v_row.patient_name_key, v_row.category_id
            );
            if v_membership_id is null then
                continue;
            end if;
            perform private.apply_legacy_membership_fields(v_membership_id, v_row.fields, v_row.legacy_updated_at);
        end if;
        update app.legacy_workflow_pending set applied_at = now() where id = v_row.id;
        v_applied := v_applied + 1;
    end loop;
    return v_applied;
end
$$;
comment on function private.apply_pending_legacy_workflow(uuid) is
'Apply every staged legacy row whose membership or invoice now exists; returns how many.';

create function private.apply_legacy_on_invoice_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row app.legacy_workflow_pending;
begin
    for v_row in
        select * from app.legacy_workflow_pending as p
        where p.kind = 'invoice' and p.mx_invoice_id = new.id and p.practice_id = new.practice_id
            and p.applied_at is null
        for update
    loop
        perform private.apply_legacy_invoice_fields(new.id, v_row.fields);
        update app.legacy_workflow_pending set applied_at = now() where id = v_row.id;
    end loop;
    return null;
end
$$;
comment on function private.apply_legacy_on_invoice_insert() is
'Trigger: a new invoice picks up its staged legacy follow-up fields.';

create trigger invoices_apply_legacy_workflow
after insert on app.invoices
for each row execute function private.apply_legacy_on_invoice_insert();

create function private.apply_legacy_on_membership_insert()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_row app.legacy_workflow_pending;
begin
    for v_row in
        select p.* from app.legacy_workflow_pending as p
        inner join app.patients as pt on pt.id = new.patient_id
        where p.kind = 'membership' and p.practice_id = new.practice_id and p.category_id = new.category_id
            and p.applied_at is null
            and (p.mx_customer_id = pt.mx_customer_id or p.patient_name_key = pt.name_key)
        order by p.id
        for update of p
    loop
        perform private.apply_legacy_membership_fields(new.id, v_row.fields, v_row.legacy_updated_at);
        update app.legacy_workflow_pending set applied_at = now() where id = v_row.id;
    end loop;
    return null;
end
$$;
comment on function private.apply_legacy_on_membership_insert() is
'Trigger: a new membership picks up its staged legacy workflow fields.';

create trigger memberships_apply_legacy_workflow
after insert on app.memberships
for each row execute function private.apply_legacy_on_membership_insert();

-- ---------------------------------------------------------------------------
-- Merchants and product programmes
-- ---------------------------------------------------------------------------
create function private.import_legacy_merchant(
    p_practice_id uuid,
    p_mx_merchant_id bigint,
    p_environment text,
    p_is_active boolean,
    p_consumer_key text,
    p_consumer_secret text
)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_account app.merchant_accounts;
    v_key text;
    v_secret text;
    v_env text := case lower(coalesce(trim(p_environment), '')) when 'sandbox' then 'sandbox' else 'production' end;
begin
    select * into v_account from app.merchant_accounts where mx_merchant_id = p_mx_merchant_id;
    if found then
        select c.consumer_key, c.consumer_secret into v_key, v_secret
        from private.merchant_credentials(v_account.id) as c;
        if v_account.practice_id = p_practice_id
            and v_account.environment = v_env
            and v_account.is_active = coalesce(p_is_active, true)
            and v_key is not distinct from p_consumer_key
            and v_secret is not distinct from p_consumer_secret then
            return 'unchanged';
        end if;
    end if;
    perform private.upsert_merchant_account(
        p_practice_id, p_mx_merchant_id, coalesce(v_account.name, ''), v_env, p_consumer_key, p_consumer_secret
    );
    perform private.set_merchant_active(p_mx_merchant_id, coalesce(p_is_active, true));
    return case when v_account.id is null then 'created' else 'updated' end;
end
$$;
comment on function private.import_legacy_merchant(uuid, bigint, text, boolean, text, text) is
'Import one legacy merchant config (credentials to Vault, environment, active flag). '
'Returns created, updated or unchanged.';

create function private.import_legacy_product_category(
    p_practice_id uuid, p_product_name text, p_category_name text
)
returns table (outcome text, programme_created boolean)
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_category_id uuid;
    v_product app.products;
begin
    programme_created := false;
    if nullif(trim(p_product_name), '') is null or nullif(trim(p_category_name), '') is null
        or lower(trim(p_category_name)) = 'uncategorized' then
        outcome := 'skipped';
        return next;
        return;
    end if;
    select c.id into v_category_id from app.categories as c
    where c.practice_id = p_practice_id and lower(c.name) = lower(trim(p_category_name));
    if v_category_id is null then
        insert into app.categories (practice_id, name, kind)
        values (p_practice_id, trim(p_category_name), 'programme')
        returning id into v_category_id;
        programme_created := true;
    end if;

    select * into v_product from app.products
    where practice_id = p_practice_id and name_key = private.name_key(p_product_name);
    if not found then
        insert into app.products (practice_id, name, category_id, category_confirmed)
        values (p_practice_id, trim(p_product_name), v_category_id, true);
        outcome := 'created';
    elsif v_product.category_id = v_category_id and v_product.category_confirmed then
        outcome := 'unchanged';
    elsif v_product.category_confirmed and v_product.category_id <> v_category_id then
        outcome := 'conflict';  -- confirmed here: the new database's decision stands
    else
        -- a change-log row is how a product moves: its trigger moves the lines, rebuilds the
        -- memberships and confirms the product (20261129090100)
        insert into app.product_category_changes (practice_id, product_id, to_category_id)
        values (p_practice_id, v_product.id, v_category_id);
        outcome := 'updated';
    end if;
    return next;
end
$$;
comment on function private.import_legacy_product_category(uuid, text, text) is
'Import one legacy product -> category mapping: create the programme if missing, map and confirm '
'the product unless a different programme was confirmed here. Returns the outcome.';
