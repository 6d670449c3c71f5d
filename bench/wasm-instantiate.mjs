// Compile + instantiate time of the .wasm in V8 (node), the part of a Worker cold start the
// module controls. Prints milliseconds: compile, instantiate (median of 5).
import { readFile } from "node:fs/promises";

const bytes = await readFile("build/index_bg.wasm");
const compile = [], inst = [];
for (let i = 0; i < 5; i++) {
  let t = performance.now();
  const mod = await WebAssembly.compile(bytes);
  compile.push(performance.now() - t);
  const imports = {};
  for (const imp of WebAssembly.Module.imports(mod)) {
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] =
      imp.kind === "function" ? () => {} :
      imp.kind === "tag" ? new WebAssembly.Tag({ parameters: ["externref"] }) : undefined;
  }
  t = performance.now();
  try { new WebAssembly.Instance(mod, imports); } catch { /* start function needs the JS glue */ }
  inst.push(performance.now() - t);
}
const med = (a) => a.sort((x, y) => x - y)[2].toFixed(1);
console.log(`${med(compile)} ${med(inst)}`);
