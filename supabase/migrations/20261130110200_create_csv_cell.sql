-- Issue 12, item 7: CSV formula injection. Patient names come from payers; a spreadsheet runs
-- a cell that starts with =, +, -, @, a tab or a carriage return as a formula. One helper,
-- api.csv_cell, turns any value into one safe CSV field (OWASP's rule: such a cell gets a
-- leading apostrophe, and is then quoted like any other); every CSV export builds its
-- fields with it, so the dashboard's future exports get the rule too. (A pure function in
-- `api`, callable by the dashboard's role: it reads nothing.)

create function api.csv_cell(p_value text)
returns text
language sql
immutable
parallel safe
security invoker
set search_path = pg_catalog, pg_temp
as $$
    select case
        when p_value is null then ''
        else (
            select case
                when v.cell ~ '[",\r\n]' or v.cell <> btrim(v.cell) then '"' || replace(v.cell, '"', '""') || '"'
                else v.cell
            end
            from (
                select case when p_value ~ '^[=+@\t\r-]' then '''' || p_value else p_value end as cell
            ) as v
        )
    end
$$;
comment on function api.csv_cell(text) is
'One CSV field (RFC 4180 quoting) that no spreadsheet runs as a formula: a value starting with '
'=, +, -, @, a tab or a carriage return gets a leading apostrophe; null is empty. Every CSV export uses it.';
grant execute on function api.csv_cell(text) to authenticated;

-- The export, as in 20261129090400_create_dashboard_api.sql, with its fields built by
-- api.csv_cell; list_memberships' columns are read by name, so columns added to it later do
-- not shift this export.
create or replace function api.export_memberships_csv(
    p_practice_id uuid,
    p_tab text default 'all',
    p_status text[] default null,
    p_google_review boolean default null,
    p_referral_source text default null,
    p_fulfillment text default null,
    p_started_from date default null,
    p_started_to date default null,
    p_search text default null,
    p_sort text default 'name'
)
returns text
language plpgsql
stable
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_page constant integer := 1000;
    v_after jsonb;
    v_rows integer;
    v_chunk text;
    v_out text := 'patient_name,programme,status,started_on,last_paid_at,next_billing_on,amount,'
        || 'billing_interval,products,google_review_submitted,referral_source,fulfillment,notes' || e'\r\n';
begin
    loop
        select
            count(*),
            string_agg(
                (
                    select string_agg(api.csv_cell(f.v), ',' order by f.n)
                    from unnest(array[
                        l.patient_name, l.category_name, l.status, l.started_on::text, l.last_paid_at::text,
                        l.next_billing_on::text, l.amount::text, l.billing_interval,
                        array_to_string(l.product_names, '; '), l.google_review_submitted::text,
                        l.referral_source, l.fulfillment, l.notes
                    ]) with ordinality as f (v, n)
                ) || e'\r\n',
                '' order by l.ordinality
            ),
            (array_agg(l.cursor order by l.ordinality desc))[1]
        into v_rows, v_chunk, v_after
        from api.list_memberships(
            p_practice_id, p_tab, p_status, p_google_review, p_referral_source, p_fulfillment,
            p_started_from, p_started_to, p_search, p_sort, v_after, v_page
        ) with ordinality as l;
        v_out := v_out || coalesce(v_chunk, '');
        exit when v_rows < v_page;
    end loop;
    return v_out;
end
$$;
comment on function api.export_memberships_csv(uuid, text, text[], boolean, text, text, date, date, text, text) is
'The membership list (same filters and sort) as CSV with a header row, every row, RFC 4180 quoting; '
'every field through api.csv_cell (no cell a spreadsheet runs as a formula).';
