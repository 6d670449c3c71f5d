// The module the runtime loads (build/index.js): worker-build's shim (build/shim.js, the Worker
// and the wasm-bindgen classes) with the account actor declared as a `DurableObject`, which
// Durable Object RPC requires. The Worker calls the actor's `call` over RPC
// (src/edge/mod.rs, `WorkerPlatform::actor`); `fetch` serves the same calls over HTTP, for a
// Worker of the version before RPC during a deployment (and a Worker calls an actor of that
// version over fetch), and `alarm` runs the actor's alarms.
import { DurableObject } from "cloudflare:workers";
import worker, { AccountActor as WasmActor } from "./shim.js";

// wasm-bindgen-futures queues each wake-up of a Rust task with the global `queueMicrotask`
// (several per request). workerd's wraps every call in a new function holding native state,
// which outlives the young generation: about a quarter of the garbage that reaches the old
// generation on the webhook path (measured with V8's sampling heap profiler under `make
// bench`), and 2 µs a call. The same microtask through a settled promise leaves nothing
// behind. A task that throws (a trapped panic) is handed to `reportError`, as workerd's own
// `queueMicrotask` does, so the runtime's error handling (the shim's error listener, which
// starts a fresh instance) sees it as before.
const settled = Promise.resolve();
globalThis.queueMicrotask = (task) => {
  settled.then(() => {
    try {
      task();
    } catch (error) {
      reportError(error);
    }
  });
};

export default worker;

export class AccountActor extends DurableObject {
  #wasm;

  constructor(ctx, env) {
    super(ctx, env);
    this.#wasm = new WasmActor(ctx, env);
  }

  fetch(request) {
    return this.#wasm.fetch(request);
  }

  alarm() {
    return this.#wasm.alarm();
  }

  /** One call as JSON text in, its answer as `status digits + JSON` out. */
  call(request) {
    return this.#wasm.call(request);
  }
}
