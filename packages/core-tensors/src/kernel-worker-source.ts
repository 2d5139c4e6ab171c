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
 * is embedded as base64), the JavaScript kernels otherwise. A job on a kernel arena also carries
 * `arena` (its id) and `at` (each array's address there), and on the worker's first job on it
 * `attach` (the memory and this worker's scratch): the op then runs on an instance of the module
 * on that memory, kept for the worker's life (a backend has one arena memory).
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
const jsOps = Object.assign((${ops})(codecs), (${randomizedSvdModule.toString()})().kernelOps);
${simd ? `const wasmKernels = (${wasmKernelsModule.toString()});` : ""}
const ops = ${simd ? `wasmKernels(jsOps, ${JSON.stringify(SIMD_KERNELS_WASM_BASE64)}) || jsOps` : "jsOps"};
// Per kernel arena, the module's instance on its memory (its fallback: the copying ops).
const arenaOps = new Map();
const attachArena = ${simd ? `(attach) => wasmKernels(ops, ${JSON.stringify(SIMD_KERNELS_SHARED_WASM_BASE64)}, attach) || ops` : "() => ops"};
parentPort.on("message", (job) => {
  let result;
  try {
    if (job.attach !== undefined) arenaOps.set(job.arena, attachArena(job.attach));
    const table = (job.arena !== undefined && arenaOps.get(job.arena)) || ops;
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
