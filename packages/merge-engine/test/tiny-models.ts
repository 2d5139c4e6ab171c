import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeToF32, encodeFromF32, shapeElementCount, writeSafetensors, type DType, type InMemoryTensor } from "@stmerge/core-tensors";

/** Keys and shapes of a tiny model that still detects as SD1 (real key names, small shapes). */
export const TINY_SD1: readonly { name: string; shape: number[]; dtype?: DType }[] = [
  { name: "alphas_cumprod", shape: [10], dtype: "F32" },
  { name: "cond_stage_model.transformer.text_model.embeddings.position_ids", shape: [1, 77], dtype: "I64" },
  { name: "cond_stage_model.transformer.text_model.final_layer_norm.weight", shape: [8] },
  { name: "cond_stage_model.transformer.text_model.logit_scale", shape: [], dtype: "F32" },
  { name: "first_stage_model.decoder.conv_in.weight", shape: [4, 4, 3, 3] },
  { name: "first_stage_model.decoder.mid.attn_1.q.weight", shape: [4, 4, 1, 1] },
  { name: "model.diffusion_model.input_blocks.0.0.weight", shape: [4, 4, 3, 3] },
  { name: "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", shape: [2, 768] },
  { name: "model.diffusion_model.middle_block.1.proj_in.weight", shape: [4, 4] },
  { name: "model.diffusion_model.output_blocks.3.0.in_layers.0.weight", shape: [6] },
  { name: "model.diffusion_model.out.2.bias", shape: [4] },
  { name: "model.diffusion_model.time_embed.0.weight", shape: [4, 4] },
  { name: "model_ema.decay", shape: [], dtype: "F32" },
];

export function tempDir(prefix = "stmerge-merge-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Deterministic pseudo-random values in [-1, 1). */
export function values(n: number, seed: number): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

export interface TinyModelOptions {
  readonly dtype?: DType;
  readonly seed: number;
  readonly layout?: readonly { name: string; shape: number[]; dtype?: DType }[];
  readonly drop?: readonly string[];
  readonly extra?: readonly { name: string; shape: number[]; dtype?: DType }[];
  readonly metadata?: Record<string, string>;
}

/** Writes a tiny model; float tensors get seeded values, integer tensors 0..n-1. */
export async function writeTinyModel(path: string, options: TinyModelOptions): Promise<string> {
  const layout = [...(options.layout ?? TINY_SD1), ...(options.extra ?? [])].filter((t) => !options.drop?.includes(t.name));
  const tensors: InMemoryTensor[] = layout.map((t, i) => {
    const dtype = t.dtype ?? options.dtype ?? "F16";
    const n = shapeElementCount(t.shape);
    if (dtype === "I64") {
      const data = new Uint8Array(n * 8);
      const view = new DataView(data.buffer);
      for (let k = 0; k < n; k++) view.setBigInt64(k * 8, BigInt(k), true);
      return { name: t.name, dtype, shape: t.shape, data };
    }
    return { name: t.name, dtype, shape: t.shape, data: encodeFromF32(values(n, options.seed * 1000 + i), dtype) };
  });
  await writeSafetensors(path, tensors, options.metadata ?? {});
  return path;
}


/** Largest distance in F16 units in the last place between two value lists (after F16 rounding). */
export function maxUlpF16(a: readonly number[], b: readonly number[]): number {
  const bits = (v: readonly number[]) => {
    const enc = encodeFromF32(Float32Array.from(v), "F16");
    const u = new Uint16Array(enc.buffer, enc.byteOffset, v.length);
    // Map sign-magnitude to a monotonic integer line.
    return Array.from(u, (x) => (x & 0x8000 ? -(x & 0x7fff) : x));
  };
  const x = bits(a);
  const y = bits(b);
  if (x.length !== y.length) return Infinity;
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}
