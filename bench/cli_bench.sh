#!/usr/bin/env bash
# Times the real release binary on N generated users, as a user runs it, with the
# sqlite3 CLI doing the same job in the same run as the baseline.
# Usage: bench/cli_bench.sh N [WORKDIR]   (needs target/release/rosterd, sqlite3, GNU time)
# Prints one markdown table row per measure: measure | seconds | peak RSS (MB).
set -euo pipefail
n=${1:?usage: cli_bench.sh N [WORKDIR]}
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CARGO_TARGET_DIR:-$here/../target}/release/rosterd"
work="${2:-$(mktemp -d)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
cd "$work"

"$here/gen_users.sh" "$n" > users.csv
printf 'bench-api-key-0123456789\n' > hesh.key
cat > cfg.yaml <<'YAML'
state: state.db
source:
  type: csv
  path: users.csv
  fields:
    external_id: employee_id
    email: work_email
    first_name: first_name
    last_name: last_name
  status:
    field: status
    active_values: [Active]
providers:
  - name: hesh
    type: hesh
    base_url: https://hesh.example.invalid
    api_key_file: hesh.key
    tenant_id: 3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70
YAML
# The baseline a sysadmin would script: import the CSV, anti-join it against the
# (empty, on a first run) snapshot table, print every create as JSON.
cat > baseline.sql <<'SQL'
.mode csv
.import users.csv users
CREATE TABLE snapshot(external_id TEXT PRIMARY KEY, email TEXT, fingerprint TEXT);
.mode json
SELECT 'create' AS op, u.employee_id AS external_id, u.work_email AS email,
       u.first_name, u.last_name
  FROM users u LEFT JOIN snapshot s ON s.external_id = u.employee_id
 WHERE s.external_id IS NULL;
SQL

# measure NAME COMMAND...: one row, the output thrown away, the exit code checked
# against what the command should give (a dry run with changes exits 0).
measure() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o time.out "$@" > /dev/null 2> stderr.out || {
    echo "| $name | failed: $(tail -1 stderr.out) | |"; return; }
  read -r secs kb < time.out
  echo "| $name | $secs | $((kb / 1024)) |"
}

echo "users: $n, CSV $(awk -v b="$(stat -c %s users.csv)" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
echo "| measure | seconds | peak RSS (MB) |"
echo "| --- | --- | --- |"
measure "sqlite3 CLI baseline (import + anti-join + JSON)" sqlite3 :memory: -init /dev/null -batch -cmd ".read baseline.sql" .quit
rm -f state.db*
measure "first-run sync --dry-run --format json" "$bin" -c cfg.yaml sync --dry-run --format json
measure "first-run sync --dry-run --format text" "$bin" -c cfg.yaml sync --dry-run --format text
measure "first-run sync --dry-run --format jsonl" "$bin" -c cfg.yaml sync --dry-run --format jsonl
measure "check (read and validate the source)" "$bin" -c cfg.yaml check
# A no-change pass needs a snapshot of every user: seeded by the library (no vendor
# is involved), then a real sync that finds nothing to send.
if (cd "$here/.." && cargo run --release --quiet --example seed_snapshot -- "$work/cfg.yaml") \
  > /dev/null 2> seed.err; then
  measure "no-change sync (every user in the snapshot)" "$bin" -c cfg.yaml sync
else
  echo "| no-change sync | not measured: $(tail -1 seed.err) | |"
fi
