#!/usr/bin/env bash
# wasm-opt as worker-build runs it (WASM_OPT_BIN), minus the `--debuginfo` that worker-build
# always appends. That flag keeps the names section: about 270 KiB raw / 65 KiB gzip of function
# names that only make stack traces readable. The flags from Cargo.toml's
# [package.metadata.wasm-pack.profile.release] (which strip names) then take effect.
set -euo pipefail
args=()
for a in "$@"; do
  [ "$a" = "--debuginfo" ] || args+=("$a")
done
exec "$(dirname "$0")/../node_modules/.bin/wasm-opt" "${args[@]}"
