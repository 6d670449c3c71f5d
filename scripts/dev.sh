#!/usr/bin/env bash
# Runs the Worker locally: wrangler dev on 127.0.0.1:8787 with local KV persisted under
# .wrangler/state. Without real TikTok credentials in .dev.vars it also starts the TikTok
# simulator on 127.0.0.1:9797 and points the Worker at it.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
say() { echo "dev: $* ($(( $(date +%s) - started ))s)"; }
say "checking the toolchain (scripts/bootstrap.sh; installs what is missing, once)"
bash scripts/bootstrap.sh
. scripts/env.sh # the Node 22 that bootstrap may just have installed

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  echo "dev: wrote .dev.vars from .dev.vars.example (simulator settings)"
fi
val() { sed -n "s/^$1=//p" .dev.vars | tail -1; }

sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ "$(val TIKTOK_CLIENT_KEY)" = "" ] || [ "$(val TIKTOK_CLIENT_KEY)" = "sim-client-key" ] \
   || val TIKTOK_API_BASE | grep -q '127.0.0.1'; then
  say "building the TikTok simulator (cargo build --release -p tiktok-sim; one to two minutes the first time)"
  cargo build --release -p tiktok-sim
  port=$(val TIKTOK_API_BASE | sed -n 's#^http://127.0.0.1:\([0-9]*\)/.*#\1#p')
  # The simulator, like TikTok, only accepts the redirect URI registered for the app.
  redirect="$(val OAUTH_REDIRECT_URI)"
  SIM_PORT="${port:-9797}" SIM_CLIENT_KEY="$(val TIKTOK_CLIENT_KEY)" \
    SIM_CLIENT_SECRET="$(val TIKTOK_CLIENT_SECRET)" \
    SIM_REDIRECT_URIS="${redirect:-http://127.0.0.1:${PORT:-8787}/oauth/callback/}" \
    target/release/tiktok-sim &
  sim_pid=$!
  echo "dev: TikTok simulator started (no TikTok credentials in .dev.vars)"
else
  echo "dev: using the TikTok credentials and API base in .dev.vars"
fi

# Offline-friendly: no usage metrics, and the placeholder `request.cf` instead of fetching
# Cloudflare's (which prints a stack trace without network).
export WRANGLER_SEND_METRICS=false CLOUDFLARE_CF_FETCH_ENABLED=false
say "starting wrangler dev on http://127.0.0.1:${PORT:-8787}; it builds the Worker first" \
  "(scripts/build.sh: Rust to wasm32, wasm-bindgen, wasm-opt; a few minutes the first time," \
  "seconds when nothing changed) and rebuilds when src/ changes"
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" \
  --persist-to .wrangler/state --test-scheduled --show-interactive-dev-session=false
