-- Live dashboard: every change to app.memberships is announced with NOTIFY on channel
-- `membership_changes`, ids only (never a name, an amount or a status), once per statement
-- and practice. The dashboard listens on one connection and tells the browsers of that
-- practice, which re-read the changed rows through `api` under RLS.
--
-- Payload (JSON): {"p": practice id, "m": [membership ids]}; when one statement changes more
-- than 100 memberships of a practice, {"p": practice id, "m": null} ("re-read the list"), so a
-- payload stays far below NOTIFY's 8,000 bytes. NOTIFY is transactional: nothing is sent for a
-- rolled-back change, and listeners hear of a change only once it is committed.

-- One trigger function for the three statement triggers (a transition table needs a trigger
-- per event); it runs as the caller (staff editing a membership, the worker), needs no
-- privilege (NOTIFY needs none) and calls no other function, so the caller needs none either.
-- The transition tables are read by dynamic SQL because each trigger has only its own.
create function private.notify_membership_changes()
returns trigger
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_changed text := case tg_op
        when 'INSERT' then 'select n.practice_id, n.id from changed_new as n'
        when 'DELETE' then 'select o.practice_id, o.id from changed_old as o'
        -- the old practice too: a row that moved is gone from the old practice's list
        else 'select n.practice_id, n.id from changed_new as n '
            || 'union select o.practice_id, o.id from changed_old as o'
    end;
    v_row record;
begin
    for v_row in execute format(
        'select c.practice_id, case when count(*) <= 100 then jsonb_agg(c.id order by c.id) end as ids '
        'from (%s) as c group by c.practice_id',
        v_changed
    ) loop
        perform pg_catalog.pg_notify(
            'membership_changes',
            pg_catalog.jsonb_build_object('p', v_row.practice_id, 'm', v_row.ids)::text
        );
    end loop;
    return null;
end
$$;
comment on function private.notify_membership_changes() is
'Statement trigger: NOTIFY membership_changes once per practice with the changed membership ids (ids only).';

create trigger memberships_notify_insert
after insert on app.memberships
referencing new table as changed_new
for each statement execute function private.notify_membership_changes();

create trigger memberships_notify_update
after update on app.memberships
referencing old table as changed_old new table as changed_new
for each statement execute function private.notify_membership_changes();

create trigger memberships_notify_delete
after delete on app.memberships
referencing old table as changed_old
for each statement execute function private.notify_membership_changes();
