"""(c) dashboard: scale data, then every ``api`` list, count and metrics query under RLS,
beside the same query as the table owner, and their plans."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from scripts import localdb
from scripts.bench.harness import GENERATOR, ROOT, say
from scripts.bench.load import pct
from scripts.bench.report import Results, Row

# ------------------------------------------------------------------------------ (c) dashboard


def generate(url: str, practices: int, payments: int, memberships: int) -> dict[str, Any]:
    say(
        f"dashboard: generating {practices} practices, {payments} payments, "
        f"{memberships} memberships"
    )
    started = time.monotonic()
    steps = localdb.psql_file(
        url, GENERATOR, practices=practices, payments=payments, memberships=memberships
    )
    elapsed = time.monotonic() - started
    print(steps, flush=True)
    check = localdb.psql_file(
        url, ROOT / "sql" / "bench" / "check_scale_data.sql", sample=1000, tuples_only=True
    )
    last = [x for x in check.splitlines() if x.count("|") == 2][-1].split("|")
    with psycopg.connect(url) as conn:
        counts = {
            t: conn.execute(f"select count(*) from app.{t}").fetchone()[0]  # type: ignore[index]
            for t in (
                "practices",
                "patients",
                "memberships",
                "payments",
                "invoices",
                "invoice_lines",
                "membership_events",
                "contracts",
            )
        }
        size = conn.execute(
            "select pg_size_pretty(pg_database_size(current_database()))"
        ).fetchone()
    return {
        "seconds": round(elapsed, 1),
        "steps": steps,
        "counts": counts,
        "size": size[0] if size else "?",
        "check": {
            "checked": int(last[0]),
            "differing": int(last[1]),
            "with_new_events": int(last[2]),
        },
    }


def dashboard_queries(
    conn: psycopg.Connection[Any],
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str, str]]]:
    """The member of the largest practice, the parameters, and the queries PostgREST would run
    for it (kind, name, SQL)."""
    row = conn.execute(
        """
        select p.id, m.user_id, (select count(*) from app.memberships x where x.practice_id = p.id)
        from app.practices as p
        join app.practice_members as m on m.practice_id = p.id and m.role = 'owner'
        order by 3 desc limit 1
        """
    ).fetchone()
    assert row is not None
    practice_id, user_id, n = row
    cat = conn.execute(
        "select id from app.categories where practice_id = %s and name = 'TRT'", (practice_id,)
    ).fetchone()
    patient = conn.execute(
        "select patient_id from app.payments where practice_id = %s "
        "group by 1 order by count(*) desc limit 1",
        (practice_id,),
    ).fetchone()
    page1 = conn.execute(
        "select cursor from api.list_memberships(%s) offset 49 limit 1", (practice_id,)
    ).fetchone()
    if cat is None or patient is None or page1 is None:
        # a missing parameter would be null and time another query than the one named
        raise SystemExit("bench: the largest practice lacks a TRT programme, payments or a page 2")
    today = dt.date.today()
    p = {
        "practice": practice_id,
        "cat": str(cat[0]),
        "patient": patient[0],
        "after": Jsonb(page1[0]),
        "month_from": today.replace(day=1),
        "year_from": today - dt.timedelta(days=365),
        "today": today,
    }
    info = {"practice_id": str(practice_id), "user_id": str(user_id), "memberships": n}
    L, C, M, R = "list", "count", "metrics", "reference"
    queries = [
        (
            L,
            "list_memberships: all, by name",
            "select * from api.list_memberships(%(practice)s)",
        ),
        (
            L,
            "list_memberships: page 2 (cursor)",
            "select * from api.list_memberships(%(practice)s, p_after => %(after)s)",
        ),
        (
            L,
            "list_memberships: programme tab",
            "select * from api.list_memberships(%(practice)s, p_tab => %(cat)s)",
        ),
        (
            L,
            "list_memberships: cancellations tab",
            "select * from api.list_memberships(%(practice)s, p_tab => 'cancellations')",
        ),
        (
            L,
            "list_memberships: status past_due",
            "select * from api.list_memberships(%(practice)s, p_status => '{past_due}')",
        ),
        (
            L,
            "list_memberships: search 'smi'",
            "select * from api.list_memberships(%(practice)s, p_search => 'smi')",
        ),
        (
            L,
            "list_memberships: last paid desc",
            "select * from api.list_memberships(%(practice)s, p_sort => 'last_paid_at.desc')",
        ),
        (
            L,
            "list_memberships: started from/to",
            "select * from api.list_memberships(%(practice)s, p_started_from => %(year_from)s, "
            "p_started_to => %(today)s, p_sort => 'started_on.desc')",
        ),
        (
            L,
            "GET api.payments (newest 50)",
            "select * from api.payments where practice_id = %(practice)s "
            "order by mx_created_at desc, id desc limit 50",
        ),
        (
            L,
            "GET api.invoices (newest 50)",
            "select * from api.invoices where practice_id = %(practice)s "
            "order by invoice_date desc, id desc limit 50",
        ),
        (
            L,
            "GET api.membership_events (newest 50)",
            "select * from api.membership_events where practice_id = %(practice)s "
            "order by evidence_at desc limit 50",
        ),
        (L, "GET api.products", "select * from api.products where practice_id = %(practice)s"),
        (L, "patient_detail", "select api.patient_detail(%(patient)s)"),
        (C, "membership_tab_counts", "select * from api.membership_tab_counts(%(practice)s)"),
        # what PostgREST runs for `Prefer: count=planned`: the request's plan, its row estimate
        (
            C,
            "count=planned api.memberships",
            "explain (format json) select * from api.memberships where practice_id = %(practice)s",
        ),
        (
            C,
            "count=planned api.payments",
            "explain (format json) select * from api.payments where practice_id = %(practice)s",
        ),
        # `Prefer: count=exact` counts every row of the practice (52k memberships, 520k
        # payments at the default scale): measured for reference, not a dashboard query
        (
            R,
            "count=exact api.memberships",
            "select count(*) from api.memberships where practice_id = %(practice)s",
        ),
        (
            R,
            "count=exact api.payments",
            "select count(*) from api.payments where practice_id = %(practice)s",
        ),
        (
            M,
            "practice_metrics: this month",
            "select * from api.practice_metrics(%(practice)s, %(month_from)s, %(today)s)",
        ),
        (
            M,
            "practice_metrics: last 12 months",
            "select * from api.practice_metrics(%(practice)s, %(year_from)s, %(today)s)",
        ),
    ]
    return info, p, queries


def time_query(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], user_id: str | None
) -> float:
    """One PostgREST-style transaction (as ``user_id``, or as the owner when None); the
    query's own time in ms (role and claims are set before the clock starts)."""
    with conn.transaction():
        if user_id is not None:
            localdb.act_as_user(conn, user_id)
        started = time.perf_counter()
        conn.execute(sql, params).fetchall()
        return (time.perf_counter() - started) * 1000


def explain(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], user_id: str) -> str:
    """explain (analyze, buffers) as the member; nested statements of functions via auto_explain."""
    notices: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    conn.add_notice_handler(on_notice)
    try:
        with conn.transaction():
            localdb.act_as_user(conn, user_id)
            rows = conn.execute("explain (analyze, buffers) " + sql, params).fetchall()
    finally:
        conn.remove_notice_handler(on_notice)
    text = "\n".join(r[0] for r in rows)
    nested = [n for n in notices if n.startswith("duration:")]
    if nested:
        text += "\n\n-- nested statements (auto_explain):\n" + "\n\n".join(nested)
    return text


SCALE_DB = "mx_bench_scale"


def generation_key(practices: int, payments: int, memberships: int) -> str:
    """What a scale database was generated from: the parameters and the generator itself."""
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:16]
    return f"{practices}/{payments}/{memberships}/{digest}"


def reusable_scale_data(practices: int, payments: int, memberships: int) -> str | None:
    """The scale database of an earlier run with the same parameters and generator, migrated
    to now."""
    url = localdb.database_url(SCALE_DB)
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("select key from bench.generation").fetchone()
    except psycopg.Error:
        return None
    if row is None or row[0] != generation_key(practices, payments, memberships):
        return None
    localdb.apply_migrations(url)  # the migrations added since it was generated
    return url


def bench_dashboard(
    results: Results,
    practices: int,
    payments: int,
    memberships: int,
    iterations: int,
    reuse_data: bool,
) -> None:
    url = reusable_scale_data(practices, payments, memberships) if reuse_data else None
    if url is not None:
        say(f"dashboard: reusing {SCALE_DB} (same parameters and generator), migrated to now")
        results.details["generation"] = {"reused": SCALE_DB}
    else:
        url = localdb.fresh_database(SCALE_DB)
        gen = generate(url, practices, payments, memberships)
        with psycopg.connect(url) as conn:
            conn.execute(
                "create table bench.generation as select %s as key, now() as generated_at",
                (generation_key(practices, payments, memberships),),
            )
        results.details["generation"] = gen
        say(f"dashboard: generated in {gen['seconds']} s ({gen['size']}); check {gen['check']}")
        results.add(
            Row(
                "scale data generation",
                f"{gen['seconds']:.0f} s for {gen['counts']['payments']:,} payments, "
                f"{gen['counts']['memberships']:,} memberships ({gen['size']})",
                f"consistency: {gen['check']['differing']} of {gen['check']['checked']} "
                "sampled memberships "
                "differ from private.refresh_membership_from_payments",
                None,
                "minutes; 0 differing",
                gen["check"]["differing"] == 0 and gen["check"]["with_new_events"] == 0,
            )
        )

    with psycopg.connect(url, autocommit=True) as conn:
        info, params, queries = dashboard_queries(conn)
    results.details["dashboard_member"] = info
    member_id = info["user_id"]
    say(f"dashboard: member of the largest practice ({info['memberships']:,} memberships)")
    measured = []
    with psycopg.connect(url) as member, psycopg.connect(url) as owner:
        for kind, name, sql in queries:
            for _ in range(3):  # warm-up
                time_query(member, sql, params, member_id)
                time_query(owner, sql, params, None)
            runs = iterations if kind in ("list", "count") else max(5, iterations // 5)
            m_times, o_times = [], []
            # Interleaved, so both see the same drift, and in turns (member first, then owner
            # first): shared_buffers is small next to the data, and whichever runs first reads
            # the pages both need into it.
            for i in range(runs):
                if i % 2 == 0:
                    m_times.append(time_query(member, sql, params, member_id))
                    o_times.append(time_query(owner, sql, params, None))
                else:
                    o_times.append(time_query(owner, sql, params, None))
                    m_times.append(time_query(member, sql, params, member_id))
            measured.append((kind, name, sql, m_times, o_times))

    with psycopg.connect(url) as conn:
        conn.execute("load 'auto_explain'")
        conn.execute("set auto_explain.log_min_duration = 0")
        conn.execute("set auto_explain.log_nested_statements = on")
        conn.execute("set auto_explain.log_analyze = on")
        conn.execute("set auto_explain.log_buffers = on")
        conn.execute("set auto_explain.log_level = notice")
        conn.commit()
        for kind, name, sql, m_times, o_times in measured:
            m50, m95 = pct(m_times, 50), pct(m_times, 95)
            o50, o95 = pct(o_times, 50), pct(o_times, 95)
            overhead = m50 / o50 if o50 > 0 else float("nan")
            fast_ok = m95 < 10 if kind in ("list", "count") else None
            rls_ok = overhead <= 1.3
            met: bool | None = rls_ok and (fast_ok if fast_ok is not None else True)
            if kind == "reference":
                met, target = None, "none (not a dashboard query)"
            elif kind == "metrics":
                target = "RLS <= 1.30x"
            else:
                target = "p95 < 10 ms, RLS <= 1.30x"
            results.add(
                Row(
                    f"dashboard {kind}: {name}",
                    f"member p50 {m50:.2f} / p95 {m95:.2f} ms",
                    f"owner (no RLS) p50 {o50:.2f} / p95 {o95:.2f} ms",
                    overhead,
                    target,
                    met,
                )
            )
            if sql.startswith("explain"):
                continue  # count=planned: itself a plan, of a query listed above
            try:
                plan = explain(conn, sql, params, member_id)
            except psycopg.Error as exc:
                conn.rollback()
                plan = f"explain failed: {exc}"
            results.plans.append((name, f"-- {sql}\n{plan}"))
