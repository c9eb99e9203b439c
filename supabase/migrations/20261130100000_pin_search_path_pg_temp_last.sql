-- Issue 12, item 1: security-definer functions could be hijacked through pg_temp.
--
-- With `set search_path = ''` Postgres still resolves *types and relations* in the session's
-- temporary schema first, and every role could create temporary objects (TEMPORARY on the
-- database is granted to PUBLIC). A caller could create, say, a domain `pg_temp.uuid` whose
-- check calls its own function, then call a definer function whose body names `uuid`
-- (private.current_practice_ids() as authenticated, private.ingest_webhook as mx_webhook):
-- the check ran as the function's owner. Two fixes, each enough on its own:
--
-- 1. every function of api, app and private gets `search_path = pg_catalog, pg_temp`: once
--    pg_temp is named (last), it is searched last, so a name resolves in pg_catalog first.
--    The loop covers every function the earlier migrations created, definer or not (the
--    house rule); pgTAP 010-catalog.sql fails on any function, now or in a later migration,
--    whose search path does not end with pg_temp.
-- 2. TEMPORARY on this database is revoked from PUBLIC: client and service roles cannot
--    create temporary objects at all (pgTAP 015-search-path-hijack.sql plays the attack).
do $pin$
declare
    v_routine regprocedure;
begin
    for v_routine in
        select p.oid::regprocedure
        from pg_catalog.pg_proc as p
        where p.pronamespace in ('api'::regnamespace, 'app'::regnamespace, 'private'::regnamespace)
            and p.prokind in ('f', 'p')
        order by p.oid
    loop
        execute format('alter routine %s set search_path = pg_catalog, pg_temp', v_routine);
    end loop;
    execute format('revoke temporary on database %I from public', current_database());
end
$pin$;
