-- Issue 12, item 9: defence in depth.
--
-- 1. app.sync_runs: its policy let staff read the runs that api.sync_runs shows only to
--    owners and admins; the table now follows the view (owners and admins of the practice).
-- 2. app.contracts.raw: the MX JSON stays server-side like the other raw columns (payments,
--    invoices, webhook events): members get column grants without it.
-- 3. The recategorisation trigger (definer, BEFORE INSERT on app.product_category_changes)
--    did its work before the insert's RLS check ran, so anyone signed in could make it look
--    up (and report on) another practice's products before being refused. A security-invoker
--    trigger now checks the caller's rights first; triggers of one event fire in name order,
--    so the work trigger is renamed to fire after it.
-- (The service roles' connection and large-object limits are in sql/ops/create_login_roles.sql.)

alter policy sync_runs_select on app.sync_runs
using (practice_id in (select unnest(private.current_admin_practice_ids())));

revoke select on app.contracts from authenticated;
grant select (
    id, practice_id, merchant_account_id, patient_id, subscription_id, name, customer_name, billing_interval,
    every, bill_on, amount, type, status, status_changed_at, start_date, next_bill_date, last_invoice_date,
    has_declined_payment, currency_code, fetched_at, created_at, updated_at
) on app.contracts to authenticated;

create function private.authorize_product_category_change()
returns trigger
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
begin
    -- runs as the caller: row security applies to a client role, not to the owner or the
    -- operator (who insert through their own procedures)
    if pg_catalog.row_security_active('app.product_category_changes'::regclass)
        and not coalesce(new.practice_id = any(private.current_admin_practice_ids()), false) then
        raise exception 'only an owner or admin of the practice may move its products'
        using errcode = '42501';
    end if;
    return new;
end
$$;
comment on function private.authorize_product_category_change() is
'Trigger (invoker): a client may request a product move only in a practice it administers; '
'checked before the definer trigger does any work.';
revoke all on function private.authorize_product_category_change() from public;

alter trigger product_category_changes_apply on app.product_category_changes
rename to product_category_changes_move;

create trigger product_category_changes_authorize
before insert on app.product_category_changes
for each row execute function private.authorize_product_category_change();
