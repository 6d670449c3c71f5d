#!/usr/bin/env bash
# Fuzzes the untrusted-input parsers and validators with proptest for a fixed case budget
# (not part of `make test`, which runs 256 cases each). Prints executions and time per target.
# Usage: scripts/fuzz.sh [cases per target, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-100000}"
targets=(
  signature_header_parser_never_panics
  signature_header_variants_round_trip
  envelope_parser_never_panics_on_bytes
  envelope_parser_keeps_any_numeric_id
  envelope_parser_never_panics_on_json_shapes
  rules_validator_never_panics
  rules_validator_on_structured_input
  send_validator_never_panics
  send_validator_on_structured_input
)
cargo test --release --lib -q --no-run 2>/dev/null
printf '| target | executions | seconds | result |\n|---|---|---|---|\n'
for t in "${targets[@]}"; do
  start=$(date +%s.%N)
  if PROPTEST_CASES="$cases" cargo test --release --lib -q "props::$t" -- --exact >/tmp/fuzz-"$t".log 2>&1; then r=ok; else r="FAILED (see /tmp/fuzz-$t.log)"; fi
  printf '| %s | %s | %.1f | %s |\n' "$t" "$cases" "$(echo "$(date +%s.%N) - $start" | bc)" "$r"
done
