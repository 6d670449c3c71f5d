// Serves the built Worker in local workerd through Miniflare's API, with the bindings
// wrangler.toml declares (read by wrangler itself, with a `.dev.vars` next to it). Requests go
// straight to workerd: no `wrangler dev` proxy and no Node process in the request path, which
// the end-to-end tests and the bench need to be repeatable (see README, "Tests").
//
// Env: CONFIG (wrangler.toml path, default ./wrangler.toml), PORT, PERSIST (directory for KV
// and Durable Object state; unset keeps state in memory), WORKER_VARS (JSON object replacing
// the settings), BASELINE=1 (a one-line JS Worker instead, for the bench's cold-start
// comparison), BASELINE=<path to an ES module> (that module instead, with one KV namespace
// bound as KV and the WORKER_VARS settings: the bench's plain-JS baseline,
// bench/baseline/worker.js), INSPECT=<port> (V8's inspector for every isolate, which
// `bench/cpuprof.mjs` profiles), NO_ASSETS=1 (without the static assets: the bench measures
// the Worker's CPU, and locally Miniflare routes every request through its own emulation of
// Cloudflare's asset router, which in production runs in front of the Worker and is not
// billed to it). Prints `ready <url> <ms to ready> <epoch ms of the start>` on stdout, the
// start being when this script has loaded Miniflare (Node.js's own start-up and loading
// Miniflare take the same time for any Worker, and are the noisiest part of a cold start: the
// bench leaves them out); SIGTERM or SIGINT stops it.
//
// Loading wrangler takes about a second; the bench keeps it out of its cold-start figures by
// resolving once (RESOLVE_ONLY=<file> writes the options and exits) and then starting with
// OPTIONS=<file>.
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const started = performance.now();
const { workerOptions, main } = process.env.OPTIONS
  ? JSON.parse(readFileSync(process.env.OPTIONS, "utf8"))
  : (await import("wrangler")).unstable_getMiniflareWorkerOptions(
      path.resolve(process.env.CONFIG || "wrangler.toml"),
    );
if (process.env.RESOLVE_ONLY) {
  writeFileSync(process.env.RESOLVE_ONLY, JSON.stringify({ workerOptions, main }));
  process.exit(0);
}
const persist = process.env.PERSIST;
// Miniflare 5 no longer finds a module's imports by itself (wrangler's `modulesRules` are
// refused): the build is our `index.js` (src/edge/entry.js), worker-build's `shim.js` and the
// `.wasm` beside them, listed here.
delete workerOptions.modulesRules;
const modulesRoot = path.dirname(main);
const baseline = process.env.BASELINE;
const oneLine = 'export default { fetch() { return new Response("ok"); } }';
let worker;
if (baseline === "1") {
  worker = { script: oneLine, modules: true };
} else if (baseline) {
  // Only what the JS baseline uses: its module and one KV namespace (no Durable Objects).
  worker = { scriptPath: path.resolve(baseline), modules: true, kvNamespaces: ["KV"] };
  delete workerOptions.durableObjects;
} else {
  worker = {
    modulesRoot,
    modules: [
      { type: "ESModule", path: main },
      ...readdirSync(modulesRoot)
        .filter((f) => f.endsWith(".js") && path.resolve(modulesRoot, f) !== path.resolve(main))
        .map((f) => ({ type: "ESModule", path: path.join(modulesRoot, f) })),
      ...readdirSync(modulesRoot)
        .filter((f) => f.endsWith(".wasm"))
        .map((f) => ({ type: "CompiledWasm", path: path.join(modulesRoot, f) })),
    ],
  };
}
// The baselines are plain Workers: the project's static assets are not theirs.
if (baseline || process.env.NO_ASSETS === "1") {
  delete workerOptions.assets;
}
if (process.env.WORKER_VARS) {
  workerOptions.bindings = JSON.parse(process.env.WORKER_VARS);
}

// Miniflare 5 takes its own option format; wrangler still derives the worker options in the
// previous (v4) one, which `convertV4MiniflareOptions` translates. Without
// `unsafeDevRegistryPath` the converted options keep the dev registry off, so concurrent
// instances never see each other.
const mf = new Miniflare(
  convertV4MiniflareOptions({
    ...workerOptions,
    ...worker,
    host: "127.0.0.1",
    port: Number(process.env.PORT || 8787),
    // No network: the default `request.cf` instead of fetching Cloudflare's.
    cf: false,
    // INSPECT=<port>: the V8 inspector for every isolate (`bench/cpuprof.mjs` profiles them).
    inspectorPort: process.env.INSPECT ? Number(process.env.INSPECT) : undefined,
    // `GET /cdn-cgi/local/scheduled?cron=...` runs the cron handler (Miniflare 5's path; it was
    // /cdn-cgi/handler/scheduled before), as `wrangler dev` does.
    unsafeTriggerHandlers: true,
    // KV and Durable Object state under PERSIST (`kv/`, `do/`); in memory without it.
    resourcePersistencePath: persist ? path.resolve(persist) : undefined,
  }),
);
const url = await mf.ready;
const startedAt = performance.timeOrigin + started;
console.log(`ready ${url} ${(performance.now() - started).toFixed(1)} ${startedAt.toFixed(1)}`);

const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
