#!/usr/bin/env bash
# Builds the release .wasm and its JS shim into build/ with worker-build, using registry-installed
# wasm-bindgen, esbuild and wasm-opt instead of worker-build's GitHub downloads.
# Skipped when nothing that goes into the build changed since the last successful one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
stamp_file=build/.inputs.sha256
stamp=$( (find src -type f | sort | xargs sha256sum; sha256sum Cargo.toml Cargo.lock package-lock.json scripts/build.sh scripts/wasm-opt.sh) | sha256sum | cut -d' ' -f1)
if [ -f build/index.js ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
  echo "build: up to date (build/index.js)"
  exit 0
fi

export WASM_BINDGEN_BIN="$CARGO_BIN/wasm-bindgen"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$PWD/scripts/wasm-opt.sh"
"$CARGO_BIN/worker-build" --release
echo "$stamp" > "$stamp_file"
