"""``make bench``: each benchmark beside its ceiling, in one run, and the ratio between them.
One module per benchmark (ingest, worker, dashboard), the report writer in ``report.py``.

    python -m scripts.bench [--only ingest|worker|dashboard]
                            [--practices N --payments N --memberships N] [--reuse-data]
                            [--iterations N] [--quick] [--no-doc]

* ingest: ``wrk`` against a running ``python -m webhook`` (max throughput, closed loop), an
  open-loop fixed-rate run at half that throughput for p99 (``scripts/bench/load.py``), and
  the ceiling: ``pgbench`` running the same ``private.ingest_webhook`` call with the same
  payload and concurrency on the same database.
* worker: events pre-queued through ingest, ``python -m worker run`` draining them with the
  MX stand-in at 0 ms and at 100 ms; ceiling: ``pgbench`` calling
  ``private.apply_payment_event`` with the canonical JSON the worker would build.
* dashboard: scale data (``sql/bench/generate_scale_data.sql``), then every ``api`` list,
  count and metrics query as a member of the largest practice exactly as PostgREST runs it
  (role and JWT claims set per transaction), beside the same query as the table owner
  (no RLS), and ``explain (analyze, buffers)`` of each.

Absolute times drift on a shared machine: every figure is printed beside its ceiling.
Results: the table on stdout, ``.run/bench/results.json`` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import sys

from scripts.bench.dashboard import SCALE_DB, bench_dashboard
from scripts.bench.harness import DOC, ROOT, RUN_DIR, say
from scripts.bench.ingest import bench_ingest
from scripts.bench.report import Results, machine, table_text, write_doc
from scripts.bench.worker import bench_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--only", choices=["ingest", "worker", "dashboard"])
    parser.add_argument("--practices", type=int, default=1000)
    parser.add_argument("--payments", type=int, default=10_000_000)
    parser.add_argument("--memberships", type=int, default=1_000_000)
    parser.add_argument(
        "--iterations", type=int, default=200, help="timed runs per dashboard list and count query"
    )
    parser.add_argument("--quick", action="store_true", help="short runs (development)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help=f"reuse {SCALE_DB} when an earlier run generated it with the same parameters "
        "and generator",
    )
    args = parser.parse_args(argv)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    info = machine()
    results = Results()
    if args.only in (None, "ingest"):
        bench_ingest(results, args.quick)
    if args.only in (None, "worker"):
        bench_worker(results, args.quick)
    if args.only in (None, "dashboard"):
        bench_dashboard(
            results,
            args.practices,
            args.payments,
            args.memberships,
            args.iterations,
            args.reuse_data,
        )
    command = "python -m scripts.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print("\n" + table_text(results.rows), flush=True)
    (RUN_DIR / "results.json").write_text(
        json.dumps(
            {
                "machine": info,
                "command": command,
                "rows": [r.__dict__ for r in results.rows],
                "details": results.details,
            },
            indent=2,
            default=str,
        )
    )
    if not args.no_doc:
        write_doc(results, info, command.strip())
        say(
            f"results written to {DOC.relative_to(ROOT)} "
            f"and {RUN_DIR.relative_to(ROOT)}/results.json"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
