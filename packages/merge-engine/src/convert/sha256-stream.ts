import { Worker } from "node:worker_threads";

/** SHA-256 of bytes pushed in order, computed on a worker thread; pushes apply backpressure. */
export interface Sha256Stream {
  /** Hands `bytes` to the worker (its buffer is transferred: do not use it afterwards). */
  push(bytes: Uint8Array): Promise<void>;
  digest(): Promise<string>;
  terminate(): Promise<void>;
}

// Inline worker source: the bundled CLI has no separate worker file.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const hash = createHash("sha256");
parentPort.on("message", (m) => {
  if (m.bytes) {
    hash.update(new Uint8Array(m.bytes));
    parentPort.postMessage({ ack: m.bytes.byteLength });
  } else {
    parentPort.postMessage({ digest: hash.digest("hex") });
  }
});
`;

/** At most this many bytes wait in the worker's queue before `push` waits. */
const MAX_IN_FLIGHT = 256 << 20;

export function createSha256Stream(onHashed?: (bytes: number) => void): Sha256Stream {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  let inFlight = 0;
  let failure: Error | undefined;
  let drained: (() => void) | undefined;
  let resolveDigest: ((digest: string) => void) | undefined;
  let rejectDigest: ((error: Error) => void) | undefined;
  worker.on("message", (m: { ack?: number; digest?: string }) => {
    if (m.ack !== undefined) {
      inFlight -= m.ack;
      onHashed?.(m.ack);
      if (inFlight <= MAX_IN_FLIGHT / 2) drained?.();
    }
    if (m.digest !== undefined) resolveDigest?.(m.digest);
  });
  const fail = (error: Error): void => {
    failure = error;
    drained?.();
    rejectDigest?.(error);
  };
  worker.on("error", fail);
  worker.on("exit", (code) => {
    if (code !== 0) fail(new Error(`hashing worker exited with code ${code}`));
  });
  return {
    async push(bytes) {
      if (failure) throw failure;
      const owned = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice();
      inFlight += owned.byteLength;
      worker.postMessage({ bytes: owned.buffer }, [owned.buffer as ArrayBuffer]);
      while (inFlight > MAX_IN_FLIGHT && !failure) await new Promise<void>((resolve) => (drained = resolve));
      drained = undefined;
      if (failure) throw failure;
    },
    digest() {
      return new Promise<string>((resolve, reject) => {
        if (failure) return reject(failure);
        resolveDigest = resolve;
        rejectDigest = reject;
        worker.postMessage({ end: true });
      }).finally(() => void worker.terminate());
    },
    async terminate() {
      await worker.terminate();
    },
  };
}
