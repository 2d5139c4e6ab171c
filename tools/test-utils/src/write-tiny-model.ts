// core-tensors' tests use this package, so it reaches core-tensors by path instead of declaring
// it (a declared dependency would make the workspace graph circular).
import { encodeFromF32, shapeElementCount, writeSafetensors, type DType, type InMemoryTensor } from "../../../packages/core-tensors/src/index.js";
import { seededValues } from "./seeded-values.js";

/** One tensor of a tiny layout: a real key name, a small shape and, where it is fixed, its dtype. */
export interface TinyLayoutTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype?: DType;
}

/**
 * Keys and shapes of a tiny model that still detects as SD1 (real key names, small shapes), with
 * the tensors a merge treats specially: integer position ids, F32 scalars, the EMA decay.
 */
export const TINY_SD1: readonly TinyLayoutTensor[] = [
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

export interface TinyModelOptions {
  /** The dtype of tensors whose layout entry names none (default F16). */
  readonly dtype?: DType;
  /** Varies the values between models. */
  readonly seed: number;
  /** The tensors to write (default {@link TINY_SD1}). */
  readonly layout?: readonly TinyLayoutTensor[];
  /** Names to leave out of the layout. */
  readonly drop?: readonly string[];
  /** Tensors to write after the layout's. */
  readonly extra?: readonly TinyLayoutTensor[];
  /**
   * Element `k` of tensor `i`, for every dtype (default: float tensors get
   * `seededValues(n, seed·1000 + i)`, integer tensors 0..n-1).
   */
  readonly value?: (tensor: number, element: number) => number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Writes a tiny safetensors model at `path` and returns the path. */
export async function writeTinyModel(path: string, options: TinyModelOptions): Promise<string> {
  const layout = [...(options.layout ?? TINY_SD1), ...(options.extra ?? [])].filter((t) => !options.drop?.includes(t.name));
  const { value } = options;
  const tensors: InMemoryTensor[] = layout.map((t, i) => {
    const dtype = t.dtype ?? options.dtype ?? "F16";
    const shape = [...t.shape];
    const n = shapeElementCount(shape);
    if (dtype === "I64") {
      const data = new Uint8Array(n * 8);
      const view = new DataView(data.buffer);
      for (let k = 0; k < n; k++) view.setBigInt64(k * 8, BigInt(value ? Math.round(value(i, k)) : k), true);
      return { name: t.name, dtype, shape, data };
    }
    const floats = value ? Float32Array.from({ length: n }, (_, k) => value(i, k)) : seededValues(n, options.seed * 1000 + i);
    return { name: t.name, dtype, shape, data: encodeFromF32(floats, dtype) };
  });
  await writeSafetensors(path, tensors, { ...options.metadata });
  return path;
}
