import { dtypeSize, shapeElementCount, type KernelBackend, type ProgressCallback, type TensorSink, type TensorSource } from "@stmerge/core-tensors";
import { MergeError } from "../merge-error.js";
import type { AnyMergeMethod } from "../methods/merge-method.js";
import { randomForKey } from "../methods/seeded-random.js";
import { planDescriptors, type MergePlan, type PlanEntry } from "./merge-plan.js";

export interface ExecuteMergeOptions {
  /** One open source per plan model, in plan order. */
  readonly sources: readonly TensorSource[];
  readonly vaeSource?: TensorSource | undefined;
  readonly sink: TensorSink;
  readonly kernels: KernelBackend;
  readonly method: AnyMergeMethod;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly onProgress?: ProgressCallback | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface ExecuteMergeResult {
  readonly bytesWritten: number;
  readonly tensorsWritten: number;
}

/** Grow-only scratch buffers, one per slot, allocated through the kernel backend (shared memory). */
class BufferPool {
  readonly #bytes: Uint8Array[] = [];
  readonly #floats: Float32Array[] = [];
  constructor(private readonly kernels: KernelBackend) {}
  bytes(slot: number, length: number): Uint8Array {
    let b = this.#bytes[slot];
    if (!b || b.byteLength < length) this.#bytes[slot] = b = this.kernels.allocBytes(Math.max(length, 1));
    return b.subarray(0, length);
  }
  floats(slot: number, length: number): Float32Array {
    let f = this.#floats[slot];
    if (!f || f.length < length) this.#floats[slot] = f = this.kernels.allocF32(Math.max(length, 1));
    return f.subarray(0, length);
  }
}

const OUT_SLOT = 1 << 10;

/**
 * Streams a plan: for each output key, reads the inputs' slices, runs the method on the kernel
 * backend, encodes and writes, then reuses the same buffers for the next key. Element-wise
 * methods run in chunks of `plan.chunkElements`, so working memory stays under the plan's
 * budget whatever the number of models; other methods hold one key's inputs at a time. The
 * sink's header is written from the plan before any data; on any failure the sink is aborted
 * and no output appears.
 */
export async function executeMergePlan(plan: MergePlan, options: ExecuteMergeOptions): Promise<ExecuteMergeResult> {
  const { sources, sink, kernels, method } = options;
  if (sources.length !== plan.models.length) throw new MergeError("MERGE_SOURCES_MISMATCH", `plan has ${plan.models.length} models, ${sources.length} sources given`);
  const pool = new BufferPool(kernels);
  const bytesTotal = plan.outputBytes;
  let bytesDone = 0;
  let tensorsDone = 0;
  await sink.begin(planDescriptors(plan), options.metadata ?? {});
  try {
    for (const entry of plan.entries) {
      if (options.signal?.aborted) throw new MergeError("MERGE_ABORTED", `${sink.path}: merge cancelled; no output written`, { file: sink.path });
      const wrote = (n: number) => {
        bytesDone += n;
        options.onProgress?.({ phase: "merge", bytesDone, bytesTotal, tensor: entry.key, detail: entry.block, tensorsDone, tensorsTotal: plan.entries.length });
      };
      if (entry.action === "merge") await mergeEntry(plan, entry, options, pool, wrote);
      else await copyEntry(plan, entry, entry.action === "vae" ? requireVae(options.vaeSource, plan) : sources[entry.inputs[0]!]!, kernels, sink, pool, wrote);
      tensorsDone++;
    }
    options.onProgress?.({ phase: "merge", bytesDone, bytesTotal, tensorsDone, tensorsTotal: plan.entries.length });
    await sink.commit();
  } catch (error) {
    await sink.abort();
    throw error;
  }
  return { bytesWritten: bytesDone, tensorsWritten: tensorsDone };
}

function requireVae(source: TensorSource | undefined, plan: MergePlan): TensorSource {
  if (!source) throw new MergeError("MERGE_VAE_SOURCE_MISSING", `plan bakes ${plan.vaePath ?? "a VAE"} but no VAE source was given`);
  return source;
}

async function copyEntry(plan: MergePlan, entry: PlanEntry, source: TensorSource, kernels: KernelBackend, sink: TensorSink, pool: BufferPool, wrote: (n: number) => void): Promise<void> {
  const src = source.get(entry.sourceKey);
  if (!src) throw new MergeError("MERGE_KEY_VANISHED", `${source.path}: tensor ${entry.sourceKey} is no longer in the file`, { file: source.path });
  const n = shapeElementCount(entry.shape);
  const inSize = dtypeSize(src.dtype);
  const outSize = dtypeSize(entry.outDtype);
  for (let start = 0; start < n; start += plan.chunkElements) {
    const len = Math.min(plan.chunkElements, n - start);
    const bytes = await source.readRange(entry.sourceKey, start * inSize, (start + len) * inSize, pool.bytes(0, len * inSize));
    let out = bytes;
    if (src.dtype !== entry.outDtype) {
      const values = await kernels.decode(bytes, src.dtype, pool.floats(0, len));
      out = await kernels.encode(values, entry.outDtype, pool.bytes(OUT_SLOT, len * outSize));
    }
    await sink.write(entry.key, out, start * outSize);
    wrote(out.byteLength);
  }
}

async function mergeEntry(plan: MergePlan, entry: PlanEntry, options: ExecuteMergeOptions, pool: BufferPool, wrote: (n: number) => void): Promise<void> {
  const { sources, kernels, method, sink } = options;
  const n = shapeElementCount(entry.shape);
  const chunk = method.elementwise ? plan.chunkElements : Math.max(n, 1);
  const descriptors = entry.inputs.map((m) => {
    const d = sources[m]!.get(entry.key);
    if (!d) throw new MergeError("MERGE_KEY_VANISHED", `${sources[m]!.path}: tensor ${entry.key} is no longer in the file`, { file: sources[m]!.path });
    return d;
  });
  const streams = new Map<number, () => number>();
  const random = (i: number) => {
    let r = streams.get(i);
    if (!r) streams.set(i, (r = randomForKey(plan.seed, entry.key, entry.inputs[i] ?? i)));
    return r;
  };
  const outSize = dtypeSize(entry.outDtype);
  for (let start = 0; start < n; start += chunk) {
    const len = Math.min(chunk, n - start);
    const tensors = await Promise.all(
      entry.inputs.map(async (m, i) => {
        const size = dtypeSize(descriptors[i]!.dtype);
        const bytes = await sources[m]!.readRange(entry.key, start * size, (start + len) * size, pool.bytes(i, len * size));
        return kernels.decode(bytes, descriptors[i]!.dtype, pool.floats(i, len));
      }),
    );
    const out = pool.floats(OUT_SLOT, len);
    const result = await method.merge({ kernels, key: entry.key, block: entry.block, shape: entry.shape, offset: start, weights: entry.weights, random, out }, tensors, entry.params);
    if (result.length !== len) throw new MergeError("MERGE_METHOD_BAD_RESULT", `${method.name}: returned ${result.length} values for ${entry.key}, expected ${len}`);
    const encoded = await kernels.encode(result, entry.outDtype, pool.bytes(OUT_SLOT, len * outSize));
    await sink.write(entry.key, encoded, start * outSize);
    wrote(encoded.byteLength);
  }
}
