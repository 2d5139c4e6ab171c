import type { Worker } from "node:worker_threads";
import { KernelError } from "./errors.js";
import type { KernelArenaAttachment } from "./kernel-arena.js";
import { kernelWorkerSource } from "./kernel-worker-source.js";
import { startEvalWorker } from "./start-eval-worker.js";

export interface KernelJob {
  readonly op: string;
  readonly arrays: readonly ArrayBufferView[];
  readonly from: number;
  readonly to: number;
  readonly params: Readonly<Record<string, number>>;
  /** The backend's kernel arena, when some of `arrays` live in it, and each array's address there (−1: elsewhere). */
  readonly arena?: { readonly attachment: KernelArenaAttachment; readonly at: readonly number[] } | undefined;
}

const closedError = () => new KernelError("KERNEL_CLOSED", "kernel backend used after close()");

interface PoolWorker {
  readonly worker: Worker;
  readonly pending: Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>;
  /** Whether this worker has its instance on the arena (sent with its first job there). */
  attached: boolean;
}

/**
 * A fixed set of kernel worker threads, started on first use. Workers are unref'ed while idle so
 * the pool never keeps a process alive, and ref'ed while a job is outstanding so an awaited
 * result is not lost to an early exit.
 */
export class KernelWorkerPool {
  readonly size: number;
  #workers: (PoolWorker | undefined)[];
  #nextId = 1;
  #closed = false;
  /** Jobs for the first free worker (runOnFree), oldest first. */
  readonly #waiting: { job: KernelJob; resolve: (value: unknown) => void; reject: (error: Error) => void }[] = [];
  readonly #simd: boolean;
  static #sources = new Map<boolean, string>();

  /** `simd`: workers run the WebAssembly SIMD kernels where available (see kernelWorkerSource). */
  constructor(size: number, options: { simd?: boolean } = {}) {
    this.size = size;
    this.#simd = options.simd ?? false;
    this.#workers = new Array<PoolWorker | undefined>(size).fill(undefined);
  }

  #spawn(index: number): PoolWorker {
    let source = KernelWorkerPool.#sources.get(this.#simd);
    if (source === undefined) KernelWorkerPool.#sources.set(this.#simd, (source = kernelWorkerSource(this.#simd)));
    const worker = startEvalWorker(source, { name: `stmerge-kernel-${index}` });
    worker.unref();
    const entry: PoolWorker = { worker, pending: new Map(), attached: false };
    worker.on("message", (message: { id: number; result?: unknown; error?: string }) => {
      const job = entry.pending.get(message.id);
      if (!job) return;
      entry.pending.delete(message.id);
      if (entry.pending.size === 0) worker.unref();
      if (message.error !== undefined) job.reject(new KernelError("KERNEL_FAILED", `kernel worker failed: ${message.error}`));
      else job.resolve(message.result);
      this.#dispatch();
    });
    const fail = (error: Error) => {
      if (this.#workers[index] === entry) this.#workers[index] = undefined;
      for (const job of entry.pending.values()) job.reject(new KernelError("KERNEL_WORKER_DIED", `kernel worker stopped: ${error.message}`, { cause: error }));
      entry.pending.clear();
      // Waiting jobs go to the other workers, or to a new one in this slot.
      this.#dispatch();
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`exit code ${code}`)));
    this.#workers[index] = entry;
    return entry;
  }

  /** Runs one job on worker `index` (mod size). */
  run(index: number, job: KernelJob): Promise<unknown> {
    if (this.#closed) return Promise.reject(closedError());
    const slot = index % this.size;
    const entry = this.#workers[slot] ?? this.#spawn(slot);
    const id = this.#nextId++;
    const { op, arrays, from, to, params, arena } = job;
    const message: Record<string, unknown> = { id, op, arrays, from, to, params };
    if (arena) {
      const { attachment: a, at } = arena;
      message.at = at;
      if (!entry.attached) {
        entry.attached = true;
        message.attach = { memory: a.memory, scratchAt: a.scratchBase + slot * a.scratchBytes, scratchBytes: a.scratchBytes };
      }
    }
    return new Promise((resolve, reject) => {
      if (entry.pending.size === 0) entry.worker.ref();
      entry.pending.set(id, { resolve, reject });
      entry.worker.postMessage(message);
    });
  }

  /** Runs one job on the worker with the fewest outstanding jobs (whole-job ops such as an SVD). */
  runOnIdlest(job: KernelJob): Promise<unknown> {
    let best = 0;
    for (let i = 1; i < this.size; i++) if ((this.#workers[i]?.pending.size ?? 0) < (this.#workers[best]?.pending.size ?? 0)) best = i;
    return this.run(best, job);
  }

  /**
   * Runs one job on the first worker with nothing outstanding, waiting here until one is free:
   * for work split finer than the threads, so that a thread busy with something else (a
   * sequential job) leaves its share to the others.
   */
  runOnFree(job: KernelJob): Promise<unknown> {
    if (this.#closed) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      this.#waiting.push({ job, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (this.#waiting.length > 0 && !this.#closed) {
      let free = -1;
      for (let i = 0; i < this.size && free < 0; i++) if ((this.#workers[i]?.pending.size ?? 0) === 0) free = i;
      if (free < 0) return;
      const { job, resolve, reject } = this.#waiting.shift()!;
      this.run(free, job).then(resolve, reject);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const { reject } of this.#waiting.splice(0)) reject(closedError());
    const running = this.#workers.filter((w): w is PoolWorker => w !== undefined);
    this.#workers.fill(undefined);
    await Promise.all(running.map((w) => w.worker.terminate()));
  }
}
