-- The practice's settings page (issue 11): owners and admins change the name, time zone,
-- grace period before past due, lapse period, auto-apply of suggestions, the repeat-purchase
-- member rule and the default billing interval. api.practices stays a read-only view; this
-- invoker function writes through the existing update policy (owners/admins) and column
-- grants of app.practices, after checking every field so that a bad value is refused with a
-- message that names it, and nothing is changed.

create function api.update_practice_settings(p_practice_id uuid, p_changes jsonb)
returns jsonb
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_changes jsonb := coalesce(p_changes, '{}');
    v_unknown text;
    v_errors text [] := '{}';
    v_key text;
    v_value jsonb;
    v_result jsonb;
    v_days integer;  -- a whole number of days (up to 3 digits), else null
begin
    if jsonb_typeof(v_changes) is distinct from 'object' then
        raise exception 'changes must be a JSON object' using errcode = '22023';
    end if;
    -- RLS: another practice is not found; a member who is not an owner or admin is refused
    if not exists (select from app.practices as p where p.id = p_practice_id) then
        raise exception 'practice % not found', p_practice_id using errcode = 'P0002';
    end if;
    if not coalesce(p_practice_id = any(private.current_admin_practice_ids()), false) then
        raise exception 'only an owner or admin of the practice may change its settings'
        using errcode = '42501';
    end if;

    select string_agg(k, ', ' order by k) into v_unknown
    from jsonb_object_keys(v_changes) as k
    where k not in (
        'name', 'timezone', 'past_due_grace_days', 'lapse_days', 'auto_apply_suggestions',
        'count_repeat_purchases', 'default_billing_interval'
    );
    if v_unknown is not null then
        raise exception 'unknown settings: %', v_unknown using errcode = '22023';
    end if;

    -- every field checked before anything is written; all the reasons in one message
    for v_key, v_value in select e.key, e.value from jsonb_each(v_changes) as e order by e.key loop
        case v_key
            when 'name' then
                if jsonb_typeof(v_value) <> 'string' or length(trim(v_value #>> '{}')) = 0 then
                    v_errors := v_errors || 'the name is required'::text;
                elsif length(trim(v_value #>> '{}')) > 200 then
                    v_errors := v_errors || 'the name is longer than 200 characters'::text;
                end if;
            when 'timezone' then
                if jsonb_typeof(v_value) <> 'string' or not exists (
                    select from pg_catalog.pg_timezone_names as z where z.name = v_value #>> '{}'
                ) then
                    v_errors := v_errors || format(
                        'unknown time zone %s (use an IANA name such as America/Chicago)',
                        left(v_value::text, 80)
                    );
                end if;
            when 'past_due_grace_days' then
                v_days := case
                    when jsonb_typeof(v_value) = 'number' and (v_value #>> '{}') ~ '^[0-9]{1,3}$'
                        then (v_value #>> '{}')::integer
                end;
                if v_days is null or v_days > 90 then
                    v_errors := v_errors || 'the grace period must be a whole number of days from 0 to 90'::text;
                end if;
            when 'lapse_days' then
                v_days := case
                    when jsonb_typeof(v_value) = 'number' and (v_value #>> '{}') ~ '^[0-9]{1,3}$'
                        then (v_value #>> '{}')::integer
                end;
                if v_days is null or v_days not between 1 and 365 then
                    v_errors := v_errors || 'the lapse period must be a whole number of days from 1 to 365'::text;
                end if;
            when 'auto_apply_suggestions', 'count_repeat_purchases' then
                if jsonb_typeof(v_value) <> 'boolean' then
                    v_errors := v_errors || format('%s must be true or false', v_key);
                end if;
            when 'default_billing_interval' then
                if jsonb_typeof(v_value) <> 'string' or (v_value #>> '{}') not in (
                    'weekly', 'biweekly', 'monthly', 'quarterly', 'semiannually', 'yearly'
                ) then
                    v_errors := v_errors
                    || 'the default billing interval must be weekly, biweekly, monthly, quarterly, semiannually or yearly'::text;
                end if;
        end case;
    end loop;
    if cardinality(v_errors) > 0 then
        raise exception '%', array_to_string(v_errors, '; ') using errcode = '22023';
    end if;

    update app.practices as p
    set name = case when v_changes ? 'name' then trim(v_changes ->> 'name') else p.name end,
        timezone = coalesce(v_changes ->> 'timezone', p.timezone),
        past_due_grace_days = coalesce((v_changes ->> 'past_due_grace_days')::integer, p.past_due_grace_days),
        lapse_days = coalesce((v_changes ->> 'lapse_days')::integer, p.lapse_days),
        auto_apply_suggestions = coalesce((v_changes ->> 'auto_apply_suggestions')::boolean, p.auto_apply_suggestions),
        count_repeat_purchases = coalesce((v_changes ->> 'count_repeat_purchases')::boolean, p.count_repeat_purchases),
        default_billing_interval = coalesce(v_changes ->> 'default_billing_interval', p.default_billing_interval)
    where p.id = p_practice_id
    returning jsonb_build_object(
        'id', p.id, 'name', p.name, 'timezone', p.timezone, 'past_due_grace_days', p.past_due_grace_days,
        'lapse_days', p.lapse_days, 'auto_apply_suggestions', p.auto_apply_suggestions,
        'count_repeat_purchases', p.count_repeat_purchases, 'default_billing_interval', p.default_billing_interval
    ) into v_result;
    if v_result is null then
        -- the update policy refused the row (checked above; kept as a second lock)
        raise exception 'only an owner or admin of the practice may change its settings'
        using errcode = '42501';
    end if;
    return v_result;
end
$$;

comment on function api.update_practice_settings(uuid, jsonb) is
'Owners/admins: change the practice''s settings (keys present in p_changes: name, timezone, '
'past_due_grace_days, lapse_days, auto_apply_suggestions, count_repeat_purchases, '
'default_billing_interval); every field is checked first and a bad one changes nothing; '
'returns the settings.';

revoke all on function api.update_practice_settings(uuid, jsonb) from public;
grant execute on function api.update_practice_settings(uuid, jsonb) to authenticated;

-- the time zones the settings page offers: the IANA names Postgres knows (the function accepts
-- any name Postgres knows; the list leaves out the posix/ and Etc/ aliases)
create view api.time_zones with (security_invoker = true) as
select z.name
from pg_catalog.pg_timezone_names as z
where z.name !~ '^(posix|Etc)/' and z.name <> 'localtime';
comment on view api.time_zones is 'Time zone names a practice may choose (IANA names Postgres knows).';
grant select on api.time_zones to authenticated;
