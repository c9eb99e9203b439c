#!/usr/bin/env bash
# Run the pgTAP tests in supabase/tests against a database built by scripts/localdb.py.
set -euo pipefail
url=$1
psql "$url" -q -v ON_ERROR_STOP=1 -c 'create extension if not exists pgtap with schema extensions'
pg_prove --dbname "$url" --ext .sql --recurse --failures supabase/tests
