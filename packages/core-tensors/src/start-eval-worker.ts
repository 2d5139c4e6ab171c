import { Worker, type WorkerOptions } from "node:worker_threads";

/** The parent's Node flags minus --input-type, which would turn the eval'd worker into an ES module. */
function workerExecArgv(): string[] {
  const args: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const arg = process.execArgv[i]!;
    if (arg === "--input-type") i++;
    else if (!arg.startsWith("--input-type=")) args.push(arg);
  }
  return args;
}

/**
 * Starts a worker thread from CommonJS source text. stmerge's workers (kernels, hash lanes, the
 * converter's SHA-256) are strings, not entry files, so they run the same from sources (tests) and
 * from the one-file bundle; this is the one place that starts such a worker.
 */
export function startEvalWorker(source: string, options: Omit<WorkerOptions, "eval" | "execArgv"> = {}): Worker {
  return new Worker(source, { ...options, eval: true, execArgv: workerExecArgv() });
}
