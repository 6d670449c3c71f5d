#!/usr/bin/env bash
# Prints the built .wasm size, raw and gzip -9 (the figure Cloudflare's limits use).
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=build/index_bg.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
printf 'wasm size: %s raw %d KiB, gzip %d KiB (%d bytes)\n' "$wasm" $((raw / 1024)) $((gz / 1024)) "$gz"
# The budget of `make bench`'s size target (a warning, not a test failure: tests assert behaviour).
budget=$((350 * 1024))
if [ "$gz" -gt "$budget" ]; then
  echo "wasm size: WARNING: over the $((budget / 1024)) KiB gzip budget by $(((gz - budget) / 1024)) KiB" >&2
fi
