-- A practice's time zone is validated in the database (issue 12, item 4).
--
-- app.practices.timezone was free text: an admin (column grant, 20261129080200) could set
-- 'Mars/Olympus', and every statement that converts a time with it raised, the overdue sweep
-- of every practice included (one statement for all practices; the sweep now also runs per
-- practice: 20261130120200). Now a check constraint converts a fixed instant with the stored
-- name: a name Postgres does not know is refused with Postgres's own error
-- (time zone "..." not recognized), so what the check accepts is exactly what every later
-- conversion accepts. (pg_catalog.timezone needs no grant to the updating role.)
--
-- Existing rows: a stored name Postgres does not know cannot have worked anywhere (every
-- conversion with it failed), so it is replaced by 'UTC' before the constraint is added, and
-- each replacement is reported (NOTICE) with the practice and the old value. A migration that
-- stopped on such a row would leave the sweep broken instead.

do $fix_timezones$
declare
    v_row record;
begin
    for v_row in
        select p.id, p.slug, p.timezone from app.practices as p
        where not exists (select from pg_catalog.pg_timezone_names as z where z.name = p.timezone)
            and not exists (select from pg_catalog.pg_timezone_abbrevs as a where a.abbrev = p.timezone)
    loop
        begin
            perform timestamptz '2000-01-01 00:00:00+00' at time zone v_row.timezone;
        exception when invalid_parameter_value then
            raise notice 'practice % (%): unknown time zone "%" replaced by UTC', v_row.slug, v_row.id, v_row.timezone;
            update app.practices set timezone = 'UTC' where id = v_row.id;
        end;
    end loop;
end
$fix_timezones$;

alter table app.practices add constraint practices_timezone_check
check ((timestamptz '2000-01-01 00:00:00+00' at time zone timezone) is not null);
comment on constraint practices_timezone_check on app.practices is
'The time zone must be one Postgres knows (the conversion raises otherwise).';
