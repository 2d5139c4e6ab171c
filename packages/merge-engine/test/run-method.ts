import type { AnyMergeMethod, MergeMethodContext } from "../src/methods/merge-method.js";
import { randomForKey } from "../src/methods/seeded-random.js";
import { createCpuKernelBackend } from "@stmerge/core-tensors";

/** Runs a method on small number arrays the way the executor would, returning plain numbers. */
export async function runMethod(method: AnyMergeMethod, inputs: readonly (readonly number[])[], params: Record<string, unknown> = {}, options: { weights?: number[]; key?: string; seed?: number; shape?: number[] } = {}): Promise<number[]> {
  const tensors = inputs.map((x) => Float32Array.from(x));
  const n = tensors[0]!.length;
  const key = options.key ?? "model.diffusion_model.input_blocks.1.0.weight";
  const streams = new Map<number, () => number>();
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
