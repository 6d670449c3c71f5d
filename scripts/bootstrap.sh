#!/usr/bin/env bash
# Installs what building and testing need, from package registries only (crates.io, npm).
# Idempotent: each step is skipped when its tool is already at the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."

WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must match the wasm-bindgen crate locked in Cargo.lock exactly.
BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"

# Node.js: wrangler and Miniflare need >= 22.12 (NODE_MIN in scripts/env.sh). An older machine
# node gets a pinned Node 22 from the npm registry (the node-linux-<arch> package ships the
# official binary) in .tools/node, which scripts/env.sh then puts first on PATH.
. scripts/env.sh
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$2" ]; }
if [ -e "$TOOLS_NODE_DIR/bin/node" ] && [ "$("$TOOLS_NODE_DIR/bin/node" --version 2>/dev/null)" != "v$NODE_PIN" ]; then
  echo "bootstrap: removing .tools/node (not Node $NODE_PIN)"
  rm -rf "$TOOLS_NODE_DIR"
  PATH="${PATH//"$TOOLS_NODE_DIR/bin:"/}"
fi
machine_node=$(node --version 2>/dev/null | sed 's/^v//')
if [ ! -e "$TOOLS_NODE_DIR/bin/node" ] && ! version_ge "${machine_node:-0}" "$NODE_MIN"; then
  case "$(uname -m)" in
    x86_64) node_arch=x64 ;;
    aarch64 | arm64) node_arch=arm64 ;;
    *) echo "bootstrap: no Node.js package for $(uname -m); install Node.js >= $NODE_MIN" >&2; exit 1 ;;
  esac
  echo "bootstrap: node ${machine_node:-(none)} is older than $NODE_MIN; installing Node $NODE_PIN" \
    "from the npm registry into .tools/node (about 10 s, once)"
  npm install --prefix "$TOOLS_NODE_DIR" --no-save --no-package-lock --no-audit --no-fund \
    --loglevel=error "node-linux-$node_arch@$NODE_PIN"
  mkdir -p "$TOOLS_NODE_DIR/bin"
  ln -sfn "../node_modules/node-linux-$node_arch/bin/node" "$TOOLS_NODE_DIR/bin/node"
  . scripts/env.sh
fi

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

# Headless Chromium and its WebDriver (Debian's packages) for the admin console's browser tests.
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  echo "bootstrap: installing chromium and chromium-driver from the OS packages (about 30 s, once)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi

# npm ci (on the Node above) only when package-lock.json or the Node version changed since the
# last install.
node_version=$(node --version)
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ] \
   || [ "$(cat node_modules/.node-version 2>/dev/null)" != "$node_version" ]; then
  echo "bootstrap: npm ci on node $node_version (wrangler, miniflare, esbuild, binaryen; about 20 s)"
  npm ci --no-audit --no-fund
  touch node_modules/.package-lock.json
  echo "$node_version" > node_modules/.node-version
fi
