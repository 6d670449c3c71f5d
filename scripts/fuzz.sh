#!/usr/bin/env bash
# Fuzzing, not part of `make test`:
#  1. coverage-guided libFuzzer targets (fuzz/, cargo-fuzz on the nightly toolchain) for a
#     fixed time each: the signature header, the webhook envelope, the rules validator and the
#     send-request validator;
#  2. the proptest properties (src/props.rs) with a large case budget.
# Usage: scripts/fuzz.sh [seconds per libFuzzer target, default 60] [proptest cases, default 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
cases="${2:-100000}"

if cargo +nightly --version >/dev/null 2>&1; then
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  (cd fuzz && cargo +nightly fuzz build -O >/dev/null 2>&1)
  printf '| libFuzzer target | seconds | executions | result |\n|---|---|---|---|\n'
  for t in signature_header envelope rules send_request; do
    mkdir -p "fuzz/corpus/$t"
    if (cd fuzz && cargo +nightly fuzz run -O "$t" -- -max_total_time="$secs" -rss_limit_mb=2048) >/tmp/fuzz-"$t".log 2>&1; then r=ok; else r="CRASH (see /tmp/fuzz-$t.log)"; fi
    runs=$(grep -o 'Done [0-9]* runs' /tmp/fuzz-"$t".log | awk '{print $2}' | tail -1)
    printf '| %s | %s | %s | %s |\n' "$t" "$secs" "${runs:-?}" "$r"
  done
  echo
else
  echo "(no nightly toolchain: libFuzzer targets skipped)"
fi

targets=(
  signature_header_parser_never_panics signature_header_variants_round_trip
  envelope_parser_never_panics_on_bytes envelope_parser_keeps_any_numeric_id
  envelope_parser_never_panics_on_json_shapes rules_validator_never_panics
  rules_validator_on_structured_input send_validator_never_panics send_validator_on_structured_input
)
cargo test --release --lib -q --no-run 2>/dev/null
printf '| proptest property | cases | seconds | result |\n|---|---|---|---|\n'
for t in "${targets[@]}"; do
  start=$(date +%s%N)
  if PROPTEST_CASES="$cases" cargo test --release --lib -q "props::$t" -- --exact >/tmp/fuzz-"$t".log 2>&1; then r=ok; else r="FAILED (see /tmp/fuzz-$t.log)"; fi
  printf '| %s | %s | %s | %s |\n' "$t" "$cases" "$(( ($(date +%s%N) - start) / 1000000000 ))" "$r"
done
