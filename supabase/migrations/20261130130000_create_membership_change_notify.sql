-- Live dashboard: every change to app.memberships is announced with NOTIFY on channel
-- `membership_changes`, ids only (never a name, an amount or a status), once per statement
-- and practice. The dashboard listens on one connection and tells the browsers of that
-- practice, which re-read the changed rows through `api` under RLS.
--
-- Payload (JSON): {"p": practice id, "m": [membership ids]}; when one statement changes more
-- than 100 memberships of a practice, {"p": practice id, "m": null} ("re-read the list"), so a
-- payload stays far below NOTIFY's 8,000 bytes. NOTIFY is transactional: nothing is sent for a
-- rolled-back change, and listeners hear of a change only once it is committed.

create function private.notify_memberships(p_practice_ids uuid [], p_ids uuid [])
returns void
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_row record;
begin
    for v_row in
        select
            c.practice_id,
            case when pg_catalog.count(distinct c.id) <= 100 then pg_catalog.jsonb_agg(distinct c.id) end as ids
        from unnest(p_practice_ids, p_ids) as c (practice_id, id)  -- multi-argument form: FROM only, unqualified
        group by c.practice_id
    loop
        perform pg_catalog.pg_notify(
            'membership_changes',
            pg_catalog.jsonb_build_object('p', v_row.practice_id, 'm', v_row.ids)::text
        );
    end loop;
end
$$;
comment on function private.notify_memberships(uuid [], uuid []) is
'NOTIFY membership_changes once per practice with the changed membership ids (ids only).';

-- A transition table needs a trigger (and here a function) per event.
create function private.notify_inserted_memberships()
returns trigger
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practices uuid [];
    v_ids uuid [];
begin
    select pg_catalog.array_agg(n.practice_id order by n.id), pg_catalog.array_agg(n.id order by n.id)
    into v_practices, v_ids
    from changed_new as n;
    perform private.notify_memberships(v_practices, v_ids);
    return null;
end
$$;
comment on function private.notify_inserted_memberships() is
'Statement trigger: announce inserted memberships (ids only).';

create function private.notify_updated_memberships()
returns trigger
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practices uuid [];
    v_ids uuid [];
begin
    -- the old practice too: a row that moved is gone from the old practice's list
    select pg_catalog.array_agg(c.practice_id order by c.id), pg_catalog.array_agg(c.id order by c.id)
    into v_practices, v_ids
    from (
        select n.practice_id, n.id from changed_new as n
        union
        select o.practice_id, o.id from changed_old as o
    ) as c;
    perform private.notify_memberships(v_practices, v_ids);
    return null;
end
$$;
comment on function private.notify_updated_memberships() is
'Statement trigger: announce updated memberships (ids only).';

create function private.notify_deleted_memberships()
returns trigger
language plpgsql
security invoker
set search_path = pg_catalog, pg_temp
as $$
declare
    v_practices uuid [];
    v_ids uuid [];
begin
    select pg_catalog.array_agg(o.practice_id order by o.id), pg_catalog.array_agg(o.id order by o.id)
    into v_practices, v_ids
    from changed_old as o;
    perform private.notify_memberships(v_practices, v_ids);
    return null;
end
$$;
comment on function private.notify_deleted_memberships() is
'Statement trigger: announce deleted memberships (ids only).';

create trigger memberships_notify_insert
after insert on app.memberships
referencing new table as changed_new
for each statement execute function private.notify_inserted_memberships();

create trigger memberships_notify_update
after update on app.memberships
referencing old table as changed_old new table as changed_new
for each statement execute function private.notify_updated_memberships();

create trigger memberships_notify_delete
after delete on app.memberships
referencing old table as changed_old
for each statement execute function private.notify_deleted_memberships();
