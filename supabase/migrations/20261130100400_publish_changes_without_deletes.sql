-- Issue 12, item 10: Supabase Realtime does not filter DELETE events by RLS.
--
-- A DELETE carries no row to check a policy against, so Realtime sends it to every
-- subscriber of the table: anyone subscribed to app.memberships received the ids of
-- memberships deleted in any practice. INSERT and UPDATE events are checked against the
-- subscriber's RLS policies with the new row.
--
-- The rule: the supabase_realtime publication publishes inserts and updates only, never
-- deletes or truncates (pgTAP 010-catalog.sql fails otherwise, and on any published table
-- without RLS). Memberships are deleted in one place only, a product recategorisation
-- (private.apply_product_category_change); app.product_category_changes, whose rows are
-- only ever inserted, is published too, so a dashboard learns of a move in its own practice
-- and re-reads its lists. What a client subscribes to: docs/memberships.md, "Realtime".
-- (app.memberships and app.payments were published by 20261129090400.)
do $realtime$
begin
    if exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
        alter publication supabase_realtime set (publish = 'insert, update');
        if not exists (
            select from pg_catalog.pg_publication_tables
            where pubname = 'supabase_realtime' and schemaname = 'app' and tablename = 'product_category_changes'
        ) then
            alter publication supabase_realtime add table app.product_category_changes;
        end if;
    end if;
end
$realtime$;
