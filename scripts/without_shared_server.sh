#!/usr/bin/env bash
# Run a command as if this machine had no Postgres server: in new network and mount namespaces
# (loopback up, so 127.0.0.1:5432 does not answer) with an empty /var/run/postgresql (so the
# shared server's Unix socket is not there either). Needs root (unshare). Proves that
# `make test` builds and uses its private cluster under .localdb/ (scripts/localdb.py).
#   bash scripts/without_shared_server.sh make test TEST_DB=mx_isolated
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "error: needs root (unshare, mount)" >&2
    exit 1
fi
exec unshare --net --mount --propagation private -- bash -euo pipefail -c '
    ip link set lo up
    mount -t tmpfs tmpfs /var/run/postgresql
    if pg_isready -q -h 127.0.0.1 -p 5432 || pg_isready -q -h /var/run/postgresql; then
        echo "error: a Postgres server still answers" >&2
        exit 1
    fi
    unset DATABASE_URL PGHOST PGPORT
    exec "$@"
' bash "$@"
