// The module the runtime loads (build/index.js): worker-build's shim (build/shim.js, the Worker
// and the wasm-bindgen classes) with the account actor declared as a `DurableObject`, which
// Durable Object RPC requires. The Worker calls the actor's `call` over RPC
// (src/edge/mod.rs, `WorkerPlatform::actor`); `fetch` serves the same calls over HTTP, for a
// Worker of an older version during a deployment, and `alarm` runs the actor's alarms.
import { DurableObject } from "cloudflare:workers";
import worker, { AccountActor as WasmActor } from "./shim.js";

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
