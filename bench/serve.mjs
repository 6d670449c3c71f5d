// Serves the built Worker with Miniflare's API: requests go straight to workerd, without
// wrangler dev's proxy. Env: PORT, WORKER_VARS (JSON object of settings). Prints `ready <url>`.
import { Miniflare } from "miniflare";

const started = performance.now();
// BASELINE=1 serves a one-line JS Worker instead: the same start-up path without our module,
// so the difference in time to first response is what our .wasm costs.
const worker = process.env.BASELINE
  ? { script: 'export default { fetch() { return new Response("ok"); } }' }
  : {
      scriptPath: "build/index.js",
      modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    };
const mf = new Miniflare({
  host: "127.0.0.1",
  port: Number(process.env.PORT),
  modules: true,
  ...worker,
  compatibilityDate: "2025-09-01",
  kvNamespaces: ["TOKENS", "STATE"],
  durableObjects: { ACCOUNTS: "AccountActor" },
  bindings: JSON.parse(process.env.WORKER_VARS || "{}"),
  kvPersist: false,
  durableObjectsPersist: false,
});
const url = await mf.ready;
console.log(`ready ${url} ${(performance.now() - started).toFixed(1)}`);
const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
