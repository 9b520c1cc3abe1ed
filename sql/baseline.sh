#!/usr/bin/env bash
# Prints a migration that creates the whole schema: every file of
# sql/schemas/, in file-name order, each under a line naming it. This is how
# migrations/*_baseline.sql was made, while nothing was deployed:
#
#   sql/baseline.sh > sql/migrations/$(date -u +%Y%m%d%H%M%S)_baseline.sql
#
# Once a migration has been applied anywhere it is never regenerated or
# edited; later changes are new migrations (see sql/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

echo "-- Baseline: the whole schema, made by sql/baseline.sh from sql/schemas/."
echo "-- Applied, it leaves the database exactly as the schema files do; the"
echo "-- end-to-end tests compare the two."
for file in schemas/*.sql; do
  echo
  echo "-- ==========================================================================="
  echo "-- sql/$file"
  echo "-- ==========================================================================="
  echo
  cat "$file"
done
