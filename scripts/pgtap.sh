#!/usr/bin/env bash
# Run the pgTAP tests in supabase/tests against a database built by scripts/localdb.py.
set -euo pipefail
url=$1
psql "$url" -X -q -v ON_ERROR_STOP=1 -c 'create extension if not exists pgtap with schema extensions'
# pg_prove cannot take a URL with a query string (it splits its options on "="): hand it the
# host (a socket directory for the private cluster), port, user and database psql resolved
read -r host port user dbname < <(psql "$url" -X -At -c '\echo :HOST :PORT :USER :DBNAME')
PGHOST=$host PGPORT=$port PGUSER=$user \
    pg_prove --dbname "$dbname" --ext .sql --recurse --failures supabase/tests
