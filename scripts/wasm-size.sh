#!/usr/bin/env bash
# Prints the built .wasm size, raw and gzip -9 (the figure Cloudflare's limits use).
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=build/index_bg.wasm
raw=$(stat -c %s "$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
printf 'wasm size: %s raw %d KiB, gzip %d KiB\n' "$wasm" $((raw / 1024)) $((gz / 1024))
