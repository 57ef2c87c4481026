// Runs a wasm32-wasip1 program in Node's V8, the engine Envoy embeds:
// `node bench/run-wasi.mjs prog.wasm [args...]`. The micro-benchmarks link
// the filters' pure code, which still imports the proxy-wasm host calls
// from "env"; they are never called there, so stubs that throw stand in.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
const wasi = new WASI({ version: 'preview1', args: ['micro', ...process.argv.slice(3)], env: {}, returnOnExit: true });
const mod = await WebAssembly.compile(await readFile(process.argv[2]));
const imports = wasi.getImportObject();
const env = {};
for (const i of WebAssembly.Module.imports(mod)) if (i.module === 'env') env[i.name] = () => { throw new Error('host call ' + i.name + ' in micro-bench'); };
imports.env = env;
const inst = await WebAssembly.instantiate(mod, imports);
wasi.start(inst);
