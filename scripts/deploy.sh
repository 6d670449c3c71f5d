#!/usr/bin/env bash
# `make deploy`: checks what a first deploy usually gets wrong, then runs `wrangler deploy`.
#   scripts/deploy.sh --check-config [wrangler.toml]   only the offline checks (make test runs it)
# Refuses, with what to do: placeholder namespace ids, a missing Cloudflare login, secrets not
# yet put. Installs nothing but the project's own tools (scripts/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

toml="${2:-wrangler.toml}"
fail() { printf 'deploy: %s\n' "$1" >&2; exit 1; }

check_config() {
  if grep -Eq '^[[:space:]]*id[[:space:]]*=[[:space:]]*"REPLACE_ME' "$toml"; then
    fail "$toml still has placeholder KV namespace ids (REPLACE_ME_*).
  Create the namespaces and put the ids they print into $toml:
    npx wrangler kv namespace create TOKENS
    npx wrangler kv namespace create STATE"
  fi
  local redirect
  redirect=$(sed -n 's/^OAUTH_REDIRECT_URI *= *"\(.*\)"/\1/p' "$toml")
  if [ -n "$redirect" ] && ! printf '%s' "$redirect" | grep -Eq '^https://[^?#]+$'; then
    fail "OAUTH_REDIRECT_URI in $toml must be https, without a query or fragment (TikTok refuses others): $redirect"
  fi
}

if [ "${1:-}" = "--check-config" ]; then
  check_config
  echo "deploy: $toml is ready to deploy"
  exit 0
fi

bash scripts/bootstrap.sh
[ -f scripts/env.sh ] && . scripts/env.sh
wrangler=node_modules/.bin/wrangler
export WRANGLER_SEND_METRICS=false
check_config

if [ -z "${CLOUDFLARE_API_TOKEN:-}" ] && ! "$wrangler" whoami >/dev/null 2>&1; then
  fail "not logged in to Cloudflare. Either run \`npx wrangler login\` (opens a browser), or
  create an API token (dashboard: My Profile > API Tokens > \"Edit Cloudflare Workers\") and
  export CLOUDFLARE_API_TOKEN=<token> (and CLOUDFLARE_ACCOUNT_ID=<id> if you have several accounts)."
fi

missing=()
secrets=$("$wrangler" secret list 2>/dev/null || echo '[]')
for name in TIKTOK_CLIENT_KEY TIKTOK_CLIENT_SECRET API_KEYS TOKEN_ENCRYPTION_KEY; do
  printf '%s' "$secrets" | grep -q "\"$name\"" || missing+=("$name")
done
if [ ${#missing[@]} -gt 0 ]; then
  fail "secrets not set yet: ${missing[*]}. Put each (you are prompted for the value):
$(for m in "${missing[@]}"; do printf '    npx wrangler secret put %s\n' "$m"; done)
  API_KEYS: e.g. admin:\$(openssl rand -hex 24),\$(openssl rand -hex 24)
  TOKEN_ENCRYPTION_KEY: openssl rand -base64 32"
fi

"$wrangler" deploy
echo "deploy: done. Next: register the webhook and connect an account (README, Deploy, steps 5-7)."
