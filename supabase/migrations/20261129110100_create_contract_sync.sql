-- Contract sync: every recurring contract of a merchant, linked to its patient and to the
-- payments it billed (GET /contract/payment), applied to the memberships those payments
-- paid for, in one call per contract (private.apply_contract).
--
-- Membership evidence written here: contract_id, contract_status (MX's value verbatim,
-- unknown values included), contract_status_changed_at (only when the status differs from
-- the stored one: the staff-decision precedence compares it with staff_decided_at),
-- billing_interval, amount, next_billing_on; then private.settle_membership_status.

-- Which payments a contract billed. No foreign key to app.payments: the link is known
-- from GET /contract/payment before the payment itself is fetched (it is queued then).
create table app.contract_payments (
    contract_id bigint not null references app.contracts (id) on delete cascade,
    payment_id bigint not null,
    practice_id uuid not null references app.practices (id) on delete cascade,
    primary key (contract_id, payment_id)
);
create index contract_payments_payment_id_idx on app.contract_payments (payment_id);
create index contract_payments_practice_id_idx on app.contract_payments (practice_id);
comment on table app.contract_payments is 'Payments an MX recurring contract billed (GET /contract/payment).';

alter table app.contract_payments enable row level security;

grant select on app.contract_payments to authenticated;

create policy contract_payments_select on app.contract_payments
for select to authenticated
using (practice_id = any((select private.current_practice_ids())::uuid[]));

-- p_contract: canonical contract (worker/mx/models.py MxContract.canonical()).
-- p_payments: canonical list records of GET /contract/payment; those not processed yet are
-- queued through private.queue_sync_payments under p_run_id.
create function private.apply_contract(
    p_run_id bigint, p_fetched_at timestamptz, p_contract jsonb, p_payments jsonb default '[]'
)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
    v_run app.sync_runs;
    v_account app.merchant_accounts;
    v_contract_id bigint := (p_contract ->> 'id')::bigint;
    v_status text := nullif(trim(p_contract ->> 'status'), '');
    v_patient_id uuid;
    v_applied boolean;
    v_found integer;
    v_queued integer;
    v_link record;
    v_membership_id uuid;
    v_memberships integer := 0;
    v_statuses jsonb := '{}';
    v_last_billed timestamptz;
begin
    select * into v_run from app.sync_runs where id = p_run_id;
    if not found then
        raise exception 'unknown sync run %', p_run_id using errcode = '22023';
    end if;
    select * into v_account from app.merchant_accounts where id = v_run.merchant_account_id;
    if (p_contract ->> 'merchant_id') is not null
        and (p_contract ->> 'merchant_id')::bigint <> v_account.mx_merchant_id then
        raise exception 'contract % belongs to merchant %, not %',
            v_contract_id, p_contract ->> 'merchant_id', v_account.mx_merchant_id
        using errcode = '22023';
    end if;

    v_patient_id := private.upsert_patient(
        v_account.practice_id, (p_contract ->> 'customer_id')::bigint, p_contract ->> 'customer_name', null
    );

    insert into app.contracts as c (
        id, practice_id, merchant_account_id, patient_id, subscription_id, name, customer_name,
        billing_interval, every, bill_on, amount, type, status, status_changed_at, start_date,
        next_bill_date, last_invoice_date, has_declined_payment, currency_code, raw, fetched_at
    )
    values (
        v_contract_id, v_account.practice_id, v_account.id, v_patient_id,
        (p_contract ->> 'subscription_id')::bigint, p_contract ->> 'name', p_contract ->> 'customer_name',
        p_contract ->> 'interval', p_contract ->> 'every', p_contract ->> 'on',
        private.money(p_contract, 'amount'), p_contract ->> 'type', v_status, p_fetched_at,
        (p_contract ->> 'start_date')::date, (p_contract ->> 'next_bill_date')::date,
        (p_contract ->> 'last_invoice_date')::date, (p_contract ->> 'has_declined_payment')::boolean,
        p_contract ->> 'currency_code', coalesce(p_contract -> 'raw', '{}'), p_fetched_at
    )
    on conflict (id) do update
    set patient_id = coalesce(excluded.patient_id, c.patient_id),
        subscription_id = excluded.subscription_id,
        name = excluded.name,
        customer_name = excluded.customer_name,
        billing_interval = excluded.billing_interval,
        every = excluded.every,
        bill_on = excluded.bill_on,
        amount = excluded.amount,
        type = excluded.type,
        status = excluded.status,
        status_changed_at = case
            when c.status is distinct from excluded.status then excluded.status_changed_at
            else c.status_changed_at
        end,
        start_date = excluded.start_date,
        next_bill_date = excluded.next_bill_date,
        last_invoice_date = excluded.last_invoice_date,
        has_declined_payment = excluded.has_declined_payment,
        currency_code = excluded.currency_code,
        raw = excluded.raw,
        fetched_at = excluded.fetched_at,
        updated_at = now()
    -- a slower, older fetch never overwrites a newer one
    where c.fetched_at <= excluded.fetched_at
    returning true into v_applied;
    if not coalesce(v_applied, false) then
        return jsonb_build_object('outcome', 'stale', 'contract_id', v_contract_id);
    end if;

    insert into app.contract_payments (contract_id, payment_id, practice_id)
    select v_contract_id, (r.value ->> 'id')::bigint, v_account.practice_id
    from jsonb_array_elements(coalesce(p_payments, '[]')) as r (value)
    where (r.value ->> 'id') ~ '^[0-9]{1,18}$'
    on conflict do nothing;

    select q.found, q.queued into v_found, v_queued from private.queue_sync_payments(p_run_id, p_payments) as q;

    -- when the contract last billed (its newest stored payment): decides between two
    -- contracts of one membership
    select max(p.mx_created_at) into v_last_billed
    from app.contract_payments as cp
    inner join app.payments as p on cp.payment_id = p.id
    where cp.contract_id = v_contract_id;

    -- the memberships the contract's stored payments paid for
    for v_link in
        select distinct coalesce(p.patient_id, v_patient_id) as patient_id, l.category_id
        from app.contract_payments as cp
        inner join app.payments as p on cp.payment_id = p.id
        inner join app.payment_invoices as pi on p.id = pi.payment_id
        inner join app.invoice_lines as l on pi.invoice_id = l.invoice_id
        where cp.contract_id = v_contract_id
            and coalesce(p.patient_id, v_patient_id) is not null
    loop
        select m.id into v_membership_id
        from app.memberships as m
        where m.practice_id = v_account.practice_id
            and m.patient_id = v_link.patient_id
            and m.category_id = v_link.category_id;
        if v_membership_id is null then
            v_membership_id := private.refresh_membership_from_payments(
                v_account.practice_id, v_link.patient_id, v_link.category_id
            );
        end if;
        if v_membership_id is null then
            continue;
        end if;

        update app.memberships as m
        set contract_id = v_contract_id,
            contract_status = v_status,
            contract_status_changed_at = case
                when m.contract_status is not distinct from v_status then m.contract_status_changed_at
                -- first sight of a contract: when it changed is unknown, so it does not
                -- overrule a staff decision already made
                when m.contract_status is null and m.staff_decided_at is not null
                    then least(p_fetched_at, m.staff_decided_at)
                else p_fetched_at
            end,
            billing_interval = coalesce(p_contract ->> 'interval', m.billing_interval),
            amount = coalesce(private.money(p_contract, 'amount'), m.amount),
            next_billing_on = (p_contract ->> 'next_bill_date')::date
        where m.id = v_membership_id
            -- a membership follows the contract that billed it last
            and (
                m.contract_id is null
                or m.contract_id = v_contract_id
                or coalesce(v_last_billed, '-infinity') >= coalesce((
                    select max(p.mx_created_at)
                    from app.contract_payments as cp
                    inner join app.payments as p on cp.payment_id = p.id
                    where cp.contract_id = m.contract_id
                ), '-infinity')
            );
        if found then
            v_memberships := v_memberships + 1;
            v_statuses := v_statuses || jsonb_build_object(
                v_membership_id::text, private.settle_membership_status(v_membership_id)
            );
        end if;
        v_membership_id := null;
    end loop;

    return jsonb_build_object(
        'outcome', 'applied', 'contract_id', v_contract_id, 'status', v_status, 'patient_id', v_patient_id,
        'payments_found', v_found, 'payments_queued', v_queued, 'memberships', v_memberships,
        'membership_statuses', v_statuses
    );
end
$$;
comment on function private.apply_contract(bigint, timestamptz, jsonb, jsonb) is
'Contract sync, one call per contract: upsert the contract and its patient, link its payments '
'(queueing unprocessed ones), apply status/interval/amount/next billing to the memberships it '
'bills and settle their status.';

grant execute on function private.apply_contract(bigint, timestamptz, jsonb, jsonb) to mx_worker;
