import type { AnyMergeMethod, MergeMethodContext } from "../src/methods/merge-method.js";
import { randomForKey, type SeededRandom } from "../src/methods/seeded-random.js";
import { gatheringOrder } from "../src/merge/gathering-order.js";
import { createCpuKernelBackend, dtypeSize, type DType, type EncodedTensor, type KernelBackend } from "@stmerge/core-tensors";

/** Runs a method on small number arrays the way the executor would, returning plain numbers. */
export async function runMethod(method: AnyMergeMethod, inputs: readonly (readonly number[])[], params: Record<string, unknown> = {}, options: { weights?: number[]; key?: string; seed?: number; shape?: number[] } = {}): Promise<number[]> {
  const tensors = inputs.map((x) => Float32Array.from(x));
  const n = tensors[0]!.length;
  const key = options.key ?? "model.diffusion_model.input_blocks.1.0.weight";
  const streams = new Map<number, SeededRandom>();
  const ctx: MergeMethodContext = {
      kernels: createCpuKernelBackend({ workers: 0 }),
      key,
      block: "IN01",
      shape: options.shape ?? [n],
      offset: 0,
      weights: options.weights ?? inputs.map(() => 1 / inputs.length),
      random: (i) => {
        if (!streams.has(i)) streams.set(i, randomForKey(options.seed ?? 0, key, i));
        return streams.get(i)!;
      },
      out: new Float32Array(n),
  };
  const parsed = method.params.parse(params);
  // Statistics passes over the whole tensor as one chunk, as the executor does for a key that fits one chunk.
  let statistics: unknown;
  if (method.statistics) {
    statistics = method.statistics.init(ctx, parsed);
    for (let pass = 0; pass < method.statistics.passes; pass++) {
      await method.statistics.gather(pass, ctx, tensors, parsed, statistics);
      if (method.statistics.endPass?.(pass, statistics, parsed) === true) break;
    }
  }
  const out = await method.merge({ ...ctx, statistics }, tensors, parsed);
  return Array.from(out);
}

export function randomArray(n: number, seed: number, scale = 1): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.fround(((s / 2 ** 32) * 2 - 1) * scale);
  });
}

/**
 * Runs a method the way the executor streams a key larger than one chunk: statistics passes over
 * every chunk, then the merge pass chunk by chunk, all in `kernels`' shared memory (so a backend
 * with workers splits each chunk across its threads). Returns the merged tensor.
 */
export async function runMethodChunked(method: AnyMergeMethod, kernels: KernelBackend, inputs: readonly Float32Array[], params: Record<string, unknown>, options: { weights: number[]; chunk: number; seed?: number }): Promise<Float32Array> {
  const n = inputs[0]!.length;
  const key = "model.diffusion_model.input_blocks.1.0.weight";
  const streams = new Map<number, SeededRandom>();
  const parsed = method.params.parse(params);
  const result = new Float32Array(n);
  const chunks: { start: number; tensors: Float32Array[]; out: Float32Array }[] = [];
  for (let start = 0; start < n; start += options.chunk) {
    const length = Math.min(options.chunk, n - start);
    const tensors = inputs.map((x) => {
      const copy = kernels.allocF32(length);
      copy.set(x.subarray(start, start + length));
      return copy;
    });
    chunks.push({ start, tensors, out: kernels.allocF32(length) });
  }
  const ctxOf = (start: number, out: Float32Array): MergeMethodContext => ({
    kernels,
    key,
    block: "IN01",
    shape: [n],
    offset: start,
    weights: options.weights,
    random: (i) => {
      if (!streams.has(i)) streams.set(i, randomForKey(options.seed ?? 0, key, i));
      return streams.get(i)!;
    },
    out,
  });
  let statistics: unknown;
  if (method.statistics) {
    statistics = method.statistics.init(ctxOf(0, chunks[0]!.out), parsed);
    // In the executor's order (see gatheringOrder).
    const gathering = (pass: number) => gatheringOrder(chunks.length, pass, method.statistics!.anyChunkOrder === true).map((i) => chunks[i]!);
    for (let pass = 0; pass < method.statistics.passes; pass++) {
      for (const c of gathering(pass)) await method.statistics.gather(pass, ctxOf(c.start, c.out), c.tensors, parsed, statistics);
      if (method.statistics.endPass?.(pass, statistics, parsed) === true) break;
    }
  }
  for (const c of chunks) result.set(await method.merge({ ...ctxOf(c.start, c.out), statistics }, c.tensors, parsed), c.start);
  return result;
}

/**
 * runMethodChunked on encoded inputs, the way the executor runs a method's encoded fast paths:
 * each chunk's statistics from `gatherEncoded` (decoding for `gather` when it declines), its
 * result from `mergeEncoded` (decoding for `merge` + encode when it declines). Returns the
 * output's bytes in `outDtype`.
 */
export async function runMethodChunkedEncoded(method: AnyMergeMethod, kernels: KernelBackend, inputs: readonly EncodedTensor[], outDtype: DType, params: Record<string, unknown>, options: { weights: number[]; chunk: number; seed?: number }): Promise<Uint8Array> {
  const key = "model.diffusion_model.input_blocks.1.0.weight";
  const streams = new Map<number, SeededRandom>();
  const parsed = method.params.parse(params);
  const n = inputs[0]!.bytes.byteLength / dtypeSize(inputs[0]!.dtype);
  const outSize = dtypeSize(outDtype);
  const result = new Uint8Array(n * outSize);
  const chunks: { start: number; inputs: { bytes: Uint8Array; dtype: DType }[]; out: Float32Array }[] = [];
  for (let start = 0; start < n; start += options.chunk) {
    const length = Math.min(options.chunk, n - start);
    const slices = inputs.map(({ bytes, dtype }) => {
      const size = dtypeSize(dtype);
      const copy = kernels.allocBytes(length * size);
      copy.set(bytes.subarray(start * size, (start + length) * size));
      return { bytes: copy, dtype };
    });
    chunks.push({ start, inputs: slices, out: kernels.allocF32(length) });
  }
  const random = (i: number) => {
    if (!streams.has(i)) streams.set(i, randomForKey(options.seed ?? 0, key, i));
    return streams.get(i)!;
  };
  const ctxOf = (start: number, out: Float32Array): MergeMethodContext => ({ kernels, key, block: "IN01", shape: [n], offset: start, weights: options.weights, random, out });
  const decoded = (c: (typeof chunks)[number]) => Promise.all(c.inputs.map(({ bytes, dtype }) => kernels.decode(bytes, dtype, kernels.allocF32(c.out.length))));
  let statistics: unknown;
  if (method.statistics) {
    statistics = method.statistics.init(ctxOf(0, chunks[0]!.out), parsed);
    const gathering = (pass: number) => gatheringOrder(chunks.length, pass, method.statistics!.anyChunkOrder === true).map((i) => chunks[i]!);
    for (let pass = 0; pass < method.statistics.passes; pass++) {
      for (const c of gathering(pass)) if (!(await method.statistics.gatherEncoded?.(pass, ctxOf(c.start, c.out), c.inputs, parsed, statistics))) await method.statistics.gather(pass, ctxOf(c.start, c.out), await decoded(c), parsed, statistics);
      if (method.statistics.endPass?.(pass, statistics, parsed) === true) break;
    }
  }
  for (const c of chunks) {
    const ctx = { ...ctxOf(c.start, c.out), statistics };
    const out = kernels.allocBytes(c.out.length * outSize);
    const fast = await method.mergeEncoded?.(ctx, c.inputs, parsed, outDtype, out);
    result.set(fast ?? (await kernels.encode(await method.merge(ctx, await decoded(c), parsed), outDtype, out)), c.start * outSize);
  }
  return result;
}

/** The same backend without its optional method kernels: the methods run their reference loops on this thread. */
export function withoutMethodKernels(kernels: KernelBackend): KernelBackend {
  return { ...kernels, taskVectorHistogram: undefined, taskVectorHistogramEncoded: undefined, taskVectorWindow: undefined, taskVectorWindowEncoded: undefined, taskVectorWindowsEncoded: undefined, tiesMerge: undefined, tiesMergeEncoded: undefined, dareMergeEncoded: undefined, addDifferenceEncoded: undefined, trainDifferenceEncoded: undefined, consensus: undefined, dotAndNorms: undefined, dareDrop: undefined, combineTaskVectors: undefined };
}

/** A float array's elements as their F32 bit patterns, for bit-exact comparisons (NaN payloads and -0 included). */
export function f32Bits(x: Float32Array): number[] {
  return Array.from(new Uint32Array(x.buffer, x.byteOffset, x.length));
}

/** n values drawn from `choices` (many exact repeats, so magnitude ties are common), seeded. */
export function randomChoices(n: number, seed: number, choices: readonly number[]): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return choices[Math.floor((s / 2 ** 32) * choices.length)]!;
  });
}
