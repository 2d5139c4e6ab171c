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
 * `args` without the flags a worker refused (`node --max-old-space-size=… stmerge.js`: V8 and
 * per-process options are not allowed in a worker's execArgv). Node names them in its message;
 * when that names none of `args`, none are kept.
 */
function withoutRefused(args: readonly string[], error: Error): string[] {
  const listed = /flags: (.*)$/.exec(error.message)?.[1]?.split(", ") ?? [];
  const kept = args.filter((arg) => !listed.includes(arg));
  return kept.length < args.length ? kept : [];
}

/**
 * Starts a worker thread from CommonJS source text. stmerge's workers (kernels, hash lanes, the
 * converter's SHA-256) are strings, not entry files, so they run the same from sources (tests) and
 * from the one-file bundle; this is the one place that starts such a worker. It gets the parent's
 * Node flags that a worker accepts (e.g. --cpu-prof).
 */
export function startEvalWorker(source: string, options: Omit<WorkerOptions, "eval" | "execArgv"> = {}): Worker {
  const args = workerExecArgv();
  try {
    return new Worker(source, { ...options, eval: true, execArgv: args });
  } catch (error) {
    if ((error as { code?: unknown }).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw error;
    return new Worker(source, { ...options, eval: true, execArgv: withoutRefused(args, error as Error) });
  }
}
