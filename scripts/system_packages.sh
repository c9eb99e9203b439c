#!/usr/bin/env bash
# Debian packages the database and browser tests (and, with WITH_BENCH_TOOLS=1, the benchmarks) need,
# installed only when missing.
set -euo pipefail
need=()
pg_major=$(pg_config --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/' || echo 15)
ext_dir=/usr/share/postgresql/${pg_major}/extension
# the private cluster under .localdb/ (no server on 127.0.0.1:5432) needs the server binaries
[ -x "/usr/lib/postgresql/${pg_major}/bin/initdb" ] || need+=("postgresql-${pg_major}")
[ -f "${ext_dir}/pgtap.control" ] || need+=("postgresql-${pg_major}-pgtap")
command -v pg_prove >/dev/null || need+=(libtap-parser-sourcehandler-pgtap-perl)
[ -f "${ext_dir}/plpgsql_check.control" ] || need+=("postgresql-${pg_major}-plpgsql-check")
# the dashboard's browser tests drive Debian's Chromium with Playwright
[ -x /usr/bin/chromium ] || need+=(chromium)
# `make bench` drives the webhook with wrk and the database with pgbench
if [ "${WITH_BENCH_TOOLS:-0}" = 1 ]; then
    command -v wrk >/dev/null || need+=(wrk)
    command -v pgbench >/dev/null || need+=(postgresql-contrib)
fi
if ((${#need[@]})); then
    echo "==> installing Debian packages: ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: need root to install ${need[*]} (or install them yourself)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
