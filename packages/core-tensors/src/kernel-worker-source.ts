import { floatCodecsModule } from "./float-codecs-module.js";
import { kernelOpsModule } from "./kernel-ops-module.js";

/**
 * Source text of a kernel worker, for `new Worker(source, { eval: true })`. Built from the same
 * self-contained functions the main thread runs inline, so the bundled CLI, the built package
 * and TypeScript sources under vitest all start identical workers without a separate file.
 *
 * Protocol: the worker receives `{ id, op, arrays, from, to, params }` (arrays are views of
 * SharedArrayBuffers, so nothing is copied) and answers `{ id, result }` or `{ id, error }`.
 */
export function kernelWorkerSource(): string {
  return `"use strict";
// Bundlers that keep function names wrap them with __name(); give the helper a body here.
var __name = function (target) { return target; };
const { parentPort } = require("node:worker_threads");
const codecs = (${floatCodecsModule.toString()})();
const ops = (${kernelOpsModule.toString()})(codecs);
parentPort.on("message", (job) => {
  let result;
  try {
    const op = ops[job.op];
    if (typeof op !== "function") throw new Error("unknown kernel op " + job.op);
    result = op(job.arrays, job.from, job.to, job.params);
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: String((error && error.message) || error) });
    return;
  }
  if (result instanceof Uint32Array) parentPort.postMessage({ id: job.id, result }, [result.buffer]);
  else parentPort.postMessage({ id: job.id, result });
});
`;
}
