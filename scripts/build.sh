#!/usr/bin/env bash
# Builds the release .wasm and its JS shim into build/ with worker-build, using registry-installed
# wasm-bindgen, esbuild and wasm-opt instead of worker-build's GitHub downloads, and the pinned
# WASM_TOOLCHAIN of scripts/env.sh (installed here by rustup when missing; `wrangler deploy`
# runs this script too).
# Skipped when nothing that goes into the build changed since the last successful one.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

wasm_toolchain_ready() {
  rustup run "$WASM_TOOLCHAIN" rustc --version >/dev/null 2>&1 \
    && rustup component list --toolchain "$WASM_TOOLCHAIN" --installed 2>/dev/null | grep -qx 'rust-src' \
    && rustup target list --toolchain "$WASM_TOOLCHAIN" --installed 2>/dev/null | grep -qx wasm32-unknown-unknown
}
if ! wasm_toolchain_ready; then
  echo "build: installing the Rust toolchain $WASM_TOOLCHAIN with rust-src and wasm32 (about 30 s, once)"
  rustup toolchain install "$WASM_TOOLCHAIN" --profile minimal --component rust-src \
    --target wasm32-unknown-unknown || true
fi
if wasm_toolchain_ready; then
  # Only the wasm32 artefacts get these flags (cargo is given --target, so build scripts and
  # proc-macros are built for the host without them). panic=abort is the target's default; the
  # hook in src/edge still logs the message of a panic.
  export RUSTUP_TOOLCHAIN="$WASM_TOOLCHAIN"
  export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  export RUSTFLAGS="-Zlocation-detail=none"
else
  # Same code and behaviour, about 18 KiB of gzip larger: a machine that cannot reach the Rust
  # distribution server still builds and deploys.
  echo "build: WARNING: $WASM_TOOLCHAIN is not available; building with the default toolchain" >&2
fi

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
stamp_file=build/.inputs.sha256
stamp=$( (find src -type f | sort | xargs sha256sum; sha256sum Cargo.toml Cargo.lock package-lock.json scripts/build.sh scripts/env.sh scripts/wasm-opt.sh; echo "${RUSTUP_TOOLCHAIN:-default}") | sha256sum | cut -d' ' -f1)
if cmp -s src/edge/entry.js build/index.js && [ -f build/shim.js ] && [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ]; then
  echo "build: up to date (build/index.js)"
  exit 0
fi

export WASM_BINDGEN_BIN="$CARGO_BIN/wasm-bindgen"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$PWD/scripts/wasm-opt.sh"
"$CARGO_BIN/worker-build" --release
# The runtime loads src/edge/entry.js, which wraps worker-build's shim (see that file).
mv build/index.js build/shim.js
cp src/edge/entry.js build/index.js
# The shim runs code at load (it instantiates the .wasm, installs an error listener): a bundler
# must not drop it as free of side effects.
sed -i 's#"\./index\.js"#"./index.js", "./shim.js"#' build/package.json
grep -q '"./shim.js"' build/package.json
echo "$stamp" > "$stamp_file"
