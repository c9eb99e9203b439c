-- Issue 12, item 3: moving a merchant account to another practice mixed tenants.
--
-- `merchant update --practice` changed app.merchant_accounts.practice_id and nothing else; a
-- replayed event then attached the old practice's payment and invoice to a patient of the new
-- practice, and the invoice's lines were rewritten under the new practice while the payment
-- and invoice rows kept the old one: the new practice's owner read the old practice's lines.
--
-- The rule: history stays with the practice that received it. A merchant account that has
-- any stored history (payments, invoices, contracts, webhook events, sync runs) cannot change
-- practice; one without history (attached to the wrong practice and noticed before any
-- traffic) still can. The trigger below enforces it for every path (update_merchant_account,
-- upsert_merchant_account, a DBA's update). Behind it, the schema itself: composite foreign
-- keys make a row's patient, invoice and payment belong to the row's own practice, and the
-- upserts (20261130100200) refuse a stored row of another practice instead of rewriting it.

create function private.refuse_moving_merchant_history()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
    if exists (select from app.payments as p where p.merchant_account_id = old.id)
        or exists (select from app.invoices as i where i.merchant_account_id = old.id)
        or exists (select from app.contracts as c where c.merchant_account_id = old.id)
        or exists (select from app.webhook_events as e where e.merchant_account_id = old.id)
        or exists (select from app.sync_runs as r where r.merchant_account_id = old.id) then
        raise exception 'merchant account % (MX merchant %) has history in practice %; it cannot move to practice %',
            old.id, old.mx_merchant_id, old.practice_id, new.practice_id
        using errcode = '55000',
            hint = 'History stays with the practice that received it. '
            'Onboard the merchant under a new MX merchant id for the other practice.';
    end if;
    return new;
end
$$;
comment on function private.refuse_moving_merchant_history() is
'Trigger: a merchant account with stored history (payments, invoices, contracts, events, sync runs) '
'never changes practice.';
revoke all on function private.refuse_moving_merchant_history() from public;

create trigger merchant_accounts_keep_history_in_practice
before update of practice_id on app.merchant_accounts
for each row
when (old.practice_id is distinct from new.practice_id)
execute function private.refuse_moving_merchant_history();

-- A row's patient, invoice, payment and original payment belong to the row's own practice.
alter table app.patients add constraint patients_id_practice_key unique (id, practice_id);
alter table app.payments add constraint payments_id_practice_key unique (id, practice_id);
alter table app.invoices add constraint invoices_id_practice_key unique (id, practice_id);

alter table app.payments add constraint payments_patient_same_practice_fkey
foreign key (patient_id, practice_id) references app.patients (id, practice_id);
alter table app.payments add constraint payments_original_same_practice_fkey
foreign key (original_payment_id, practice_id) references app.payments (id, practice_id);
alter table app.invoices add constraint invoices_patient_same_practice_fkey
foreign key (patient_id, practice_id) references app.patients (id, practice_id);
alter table app.contracts add constraint contracts_patient_same_practice_fkey
foreign key (patient_id, practice_id) references app.patients (id, practice_id);
alter table app.invoice_lines add constraint invoice_lines_invoice_same_practice_fkey
foreign key (invoice_id, practice_id) references app.invoices (id, practice_id) on delete cascade;
alter table app.payment_invoices add constraint payment_invoices_payment_same_practice_fkey
foreign key (payment_id, practice_id) references app.payments (id, practice_id) on delete cascade;
alter table app.payment_invoices add constraint payment_invoices_invoice_same_practice_fkey
foreign key (invoice_id, practice_id) references app.invoices (id, practice_id) on delete cascade;
