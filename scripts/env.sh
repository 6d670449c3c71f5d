# Sourced by every script (not run): the Node.js the project's tools run on.
# wrangler and Miniflare need Node.js >= 22.12. When the machine's node is older,
# scripts/bootstrap.sh installs a pinned Node 22 from the npm registry under .tools/node, and
# this puts it first on PATH, so `node`, `npm` and node_modules/.bin/* all run on it. The e2e
# harness and the bench resolve the same .tools/node/bin/node.
NODE_PIN=22.23.5
NODE_MIN=22.12.0
TOOLS_NODE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.tools/node"
if [ -x "$TOOLS_NODE_DIR/bin/node" ]; then
  case ":$PATH:" in
    *":$TOOLS_NODE_DIR/bin:"*) ;;
    *) export PATH="$TOOLS_NODE_DIR/bin:$PATH" ;;
  esac
fi

# The Rust toolchain the release .wasm is built with (scripts/build.sh); everything else (tests,
# clippy, the simulator, the bench) uses the machine's stable toolchain. A pinned nightly, for
# one reason: `-Zbuild-std` compiles the standard library with this project's size profile
# (opt-level "z", LTO with our code) instead of linking the prebuilt, speed-optimised one, and
# `-Zlocation-detail=none` leaves out the file/line/column of every panic site (the panic
# message is kept). Together about 18 KiB of gzip. Installed by rustup from the Rust project's
# distribution server, like the wasm32 target; the pin keeps builds reproducible.
WASM_TOOLCHAIN=nightly-2026-05-20
