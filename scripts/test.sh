#!/usr/bin/env bash
# Every check, in order of cost: formatting, lints (native and wasm32), unit tests, the
# release build and its size, wrangler's offline deploy check, then the end-to-end suite
# against the built .wasm in local workerd.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" $(( $(date +%s) - started )); }

step bootstrap
bash scripts/bootstrap.sh
. scripts/env.sh # the Node 22 that bootstrap may just have installed
step "cargo fmt --check"
cargo fmt --all -- --check
step "clippy (native, all targets)"
cargo clippy --workspace --all-targets --quiet -- -D warnings
step "clippy (wasm32)"
cargo clippy -p tiktok-messaging-worker --lib --target wasm32-unknown-unknown --quiet -- -D warnings
step "unit tests"
cargo test --workspace --lib --bins --quiet
step "simulator contract (its answers against TikTok's fixtures)"
cargo test -p tiktok-sim --test contract --quiet
step "release build"
bash scripts/build.sh
bash scripts/wasm-size.sh
step "wrangler deploy --dry-run"
rm -rf target/dry-run
WRANGLER_SEND_METRICS=false node_modules/.bin/wrangler deploy --dry-run --outdir target/dry-run \
  | tee target/dry-run.log
test -s target/dry-run/index.js
# The console and /openapi.json go up as static assets (public/), not in the .wasm.
grep -Eq "Read [0-9]+ files from the assets directory" target/dry-run.log
step "end-to-end tests"
cargo test --test e2e -- "$@"
step "all checks passed"
