#!/usr/bin/env bash
# Runs the whole suite on SQLite, then again on PostgreSQL when one is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=$(command -v uv || echo "$HOME/.local/bin/uv")
PG_URL=${CLEARLINE_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}

echo "== tests on SQLite"
env -u CLEARLINE_TEST_DATABASE_URL "$UV" run pytest -p no:cacheprovider "$@"

if "$UV" run python -c "import psycopg,sys; psycopg.connect('$PG_URL', connect_timeout=3).close()" 2>/dev/null; then
  echo "== tests on PostgreSQL ($PG_URL)"
  CLEARLINE_TEST_DATABASE_URL="$PG_URL" "$UV" run pytest -p no:cacheprovider "$@"
else
  echo "PostgreSQL is not reachable at $PG_URL: ran on SQLite only."
fi
