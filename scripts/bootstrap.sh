#!/usr/bin/env bash
# Installs what building and testing need, from package registries only (crates.io, npm).
# Idempotent: each step is skipped when its tool is already at the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must match the wasm-bindgen crate locked in Cargo.lock exactly.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "bootstrap: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$("$CARGO_BIN/worker-build" --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
  echo "bootstrap: installing worker-build $WORKER_BUILD_VERSION (about 1.5 min, once)"
  # --debug: these tools only orchestrate and rewrite glue; an unoptimised build compiles in
  # half the time and still runs in about a second.
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --debug
fi

if [ "$("$CARGO_BIN/wasm-bindgen" --version 2>/dev/null | awk '{print $2}')" != "$BINDGEN_VERSION" ]; then
  echo "bootstrap: installing wasm-bindgen-cli $BINDGEN_VERSION (about 1 min, once)"
  # --locked fails on an index gap for this crate; the version pin is what matters.
  cargo install wasm-bindgen-cli --version "$BINDGEN_VERSION" --debug
fi

# npm ci only when package-lock.json changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: npm ci (wrangler, miniflare, esbuild, binaryen)"
  npm ci --no-audit --no-fund
  touch node_modules/.package-lock.json
fi
