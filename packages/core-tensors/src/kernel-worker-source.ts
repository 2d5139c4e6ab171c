import { counterDrawsModule } from "./counter-draws-module.js";
import { floatCodecsModule } from "./float-codecs-module.js";
import { kernelOpsModule } from "./kernel-ops-module.js";
import { randomizedSvdModule } from "./randomized-svd-module.js";
import { SIMD_KERNELS_SHARED_WASM_BASE64, SIMD_KERNELS_WASM_BASE64 } from "./wasm-kernels-bytes.js";
import { wasmKernelsModule } from "./wasm-kernels-module.js";

/**
 * Source text of a kernel worker, for `new Worker(source, { eval: true })`. Built from the same
 * self-contained functions the main thread runs inline, so the bundled CLI, the built package
 * and TypeScript sources under vitest all start identical workers without a separate file.
 *
 * Protocol: the worker receives `{ id, op, arrays, from, to, params }` (arrays are views of
 * SharedArrayBuffers, so nothing is copied) and answers `{ id, result }` or `{ id, error }`.
 * With `simd` the worker runs the WebAssembly SIMD kernels where its engine has them (the module
 * is embedded as base64), the JavaScript kernels otherwise. A job on the backend's kernel arena
 * also carries `at` (each array's address there), and the worker's first such job `attach` (the
 * memory and this worker's scratch): the op then runs on an instance of the module on that
 * memory, kept for the worker's life.
 */
export function kernelWorkerSource(simd = false): string {
  const codecs = floatCodecsModule.toString();
  const ops = kernelOpsModule.toString();
  // esbuild's keepNames wraps named functions in a helper (`__name`, or a one-letter name when
  // minified) defined outside the serialised functions; define a stand-in under that name.
  const helper = /([A-Za-z_$][\w$]*)\(\s*[A-Za-z_$][\w$]*\s*,\s*["']kernelNameProbe["']\s*\)/.exec(codecs)?.[1];
  const names = new Set(["__name", ...(helper ? [helper] : [])]);
  return `"use strict";
${[...names].map((name) => `var ${name} = function (target) { return target; };`).join("\n")}
// Eval'd workers are CommonJS scripts unless the process runs with --input-type=module (the
// pool strips that flag); process.getBuiltinModule covers ES module scope on Node >= 20.16.
const { parentPort } = typeof require === "function" ? require("node:worker_threads") : process.getBuiltinModule("node:worker_threads");
const codecs = (${codecs})();
const jsOps = Object.assign((${ops})(codecs, (${counterDrawsModule.toString()})()), (${randomizedSvdModule.toString()})().kernelOps);
${simd ? `const wasmKernels = (${wasmKernelsModule.toString()});` : ""}
const ops = ${simd ? `wasmKernels(jsOps, ${JSON.stringify(SIMD_KERNELS_WASM_BASE64)}) || jsOps` : "jsOps"};
// The module's instance on the arena's memory, once attached (its fallback: the copying ops).
let arenaOps;
const attachArena = ${simd ? `(attach) => wasmKernels(ops, ${JSON.stringify(SIMD_KERNELS_SHARED_WASM_BASE64)}, attach) || ops` : "() => ops"};
parentPort.on("message", (job) => {
  let result;
  try {
    if (job.attach !== undefined) arenaOps = attachArena(job.attach);
    const table = (job.at !== undefined && arenaOps) || ops;
    const op = table[job.op];
    if (typeof op !== "function") throw new Error("unknown kernel op " + job.op);
    result = op(job.arrays, job.from, job.to, job.params, job.at);
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String((error && error.message) || error) });
    return;
  }
  if (result instanceof Uint32Array) parentPort.postMessage({ id: job.id, result }, [result.buffer]);
  else parentPort.postMessage({ id: job.id, result });
});
`;
}
