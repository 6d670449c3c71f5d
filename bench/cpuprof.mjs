// Where workerd's CPU goes: samples every isolate of a Worker served with
// `INSPECT=<port> NO_ASSETS=1 node scripts/serve.mjs` (without the asset router's isolates) for
// a while, under whatever load runs meanwhile, and
// prints each isolate's busy time and its functions by self time.
//
//   node bench/cpuprof.mjs <inspector port> <milliseconds> [callers-regex]
//
// Function names of our `.wasm` show only in a build that keeps them: set the wasm-opt flags
// in Cargo.toml's [package.metadata.wasm-pack.profile.release] to ["-Oz", "-g"] for the run.
// With a regex, also prints the call stacks (6 frames) that lead to matching functions.
// TOP=<n> sets how many functions are listed (default 40).
const [port, ms, watch] = process.argv.slice(2);
if (!port || !ms) {
  console.error("usage: node bench/cpuprof.mjs <inspector port> <milliseconds> [callers-regex]");
  process.exit(2);
}
const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();

function profile(target) {
  return new Promise((resolve) => {
    const ws = new WebSocket(target.webSocketDebuggerUrl);
    let id = 0;
    const waiting = new Map();
    const send = (method, params = {}) =>
      new Promise((r) => {
        id += 1;
        waiting.set(id, r);
        ws.send(JSON.stringify({ id, method, params }));
      });
    ws.onmessage = (m) => {
      const d = JSON.parse(m.data);
      if (waiting.has(d.id)) {
        waiting.get(d.id)(d.result);
        waiting.delete(d.id);
      }
    };
    ws.onopen = async () => {
      await send("Profiler.enable");
      await send("Profiler.setSamplingInterval", { interval: 100 });
      await send("Profiler.start");
      await new Promise((r) => setTimeout(r, Number(ms)));
      const { profile } = await send("Profiler.stop");
      ws.close();
      resolve({ target, profile });
    };
    ws.onerror = () => resolve({ target, profile: null });
  });
}

const frameName = (n) =>
  n.callFrame.functionName || `(anonymous ${n.callFrame.url.split("/").pop()}:${n.callFrame.lineNumber})`;

for (const { target, profile: p } of await Promise.all(targets.map(profile))) {
  if (!p) continue;
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  p.nodes.forEach((n) => (n.children || []).forEach((c) => parent.set(c, n.id)));
  const self = new Map();
  const stacks = new Map();
  let busy = 0;
  p.samples.forEach((s, i) => {
    const dt = p.timeDeltas[i] || 0;
    const name = frameName(nodes.get(s));
    if (name === "(idle)") return;
    busy += dt;
    self.set(name, (self.get(name) || 0) + dt);
    if (watch) {
      const chain = [];
      for (let at = s; at !== undefined; at = parent.get(at)) chain.push(frameName(nodes.get(at)));
      const k = chain.findIndex((c) => new RegExp(watch).test(c));
      if (k >= 0) {
        const key = chain.slice(k, k + 6).join("  <-  ");
        stacks.set(key, (stacks.get(key) || 0) + dt);
      }
    }
  });
  if (busy === 0) continue;
  console.log(`\n== ${target.title}: busy ${(busy / 1000).toFixed(0)} ms`);
  [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(process.env.TOP || 40))
    .forEach(([k, v]) =>
      console.log(`${(v / 1000).toFixed(1).padStart(8)} ms ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k.slice(0, 140)}`),
    );
  [...stacks.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 20)
    .forEach(([k, v]) => console.log(`${(v / 1000).toFixed(1).padStart(8)} ms  ${k.slice(0, 400)}`));
}
