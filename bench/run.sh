#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: every figure there comes from one of the commands below.
# Usage: bench/run.sh [--quick]   (--quick skips the 1,000,000-user plan)
# Prints the machine, then each benchmark's own output, to stdout (tee it to keep it).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true

echo "## Machine"
echo "date:   $(date -u +%Y-%m-%dT%H:%MZ)"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores)"
echo "memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}')"
echo "rustc:  $(rustc --version)"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) before the runs"
echo

cargo build --release --quiet --bins --examples

run() {
  echo "## $*"
  echo '```'
  cargo run --release --quiet --example "$@"
  echo '```'
  echo
}

run plan_bench 10000
run plan_bench 100000
$quick || run plan_bench 1000000
run apply_bench 2000 50
run batch_bench 1000
run noop_bench 100000

# The real binary as a user runs it, with the sqlite3 CLI baseline in the same run.
cli() {
  echo "## bench/cli_bench.sh $1 (the release binary; sqlite3 $(sqlite3 --version | cut -d' ' -f1))"
  local work
  work=$(mktemp -d)
  bench/cli_bench.sh "$1" "$work"
  rm -rf "$work"
  echo
}
cli 10000
cli 100000
$quick || cli 1000000
