// Serves the built Worker in local workerd through Miniflare's API, with the bindings
// wrangler.toml declares (read by wrangler itself, with a `.dev.vars` next to it). Requests go
// straight to workerd: no `wrangler dev` proxy and no Node process in the request path, which
// the end-to-end tests and the bench need to be repeatable (see README, "Tests").
//
// Env: CONFIG (wrangler.toml path, default ./wrangler.toml), PORT, PERSIST (directory for KV
// and Durable Object state; unset keeps state in memory), WORKER_VARS (JSON object replacing
// the settings), BASELINE=1 (a one-line JS Worker instead, for the bench's cold-start
// comparison). Prints `ready <url> <ms to ready>` on stdout; SIGTERM or SIGINT stops it.
//
// Loading wrangler takes about a second; the bench keeps it out of its cold-start figures by
// resolving once (RESOLVE_ONLY=<file> writes the options and exits) and then starting with
// OPTIONS=<file>.
import { Miniflare } from "miniflare";
import { readFileSync, writeFileSync } from "node:fs";
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
const worker = process.env.BASELINE
  ? { script: 'export default { fetch() { return new Response("ok"); } }' }
  : { scriptPath: main, modulesRoot: path.dirname(main) };
if (process.env.WORKER_VARS) {
  workerOptions.bindings = JSON.parse(process.env.WORKER_VARS);
}

const mf = new Miniflare({
  ...workerOptions,
  ...worker,
  modules: true,
  host: "127.0.0.1",
  port: Number(process.env.PORT || 8787),
  // No network: the default `request.cf` instead of fetching Cloudflare's.
  cf: false,
  // `GET /cdn-cgi/handler/scheduled?cron=...` runs the cron handler, as in production.
  unsafeTriggerHandlers: true,
  kvPersist: persist ? path.join(persist, "kv") : false,
  durableObjectsPersist: persist ? path.join(persist, "do") : false,
});
const url = await mf.ready;
console.log(`ready ${url} ${(performance.now() - started).toFixed(1)}`);

const stop = async () => {
  await mf.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
