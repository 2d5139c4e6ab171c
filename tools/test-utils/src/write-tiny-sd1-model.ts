// core-tensors' tests use this package, so it reaches core-tensors by path instead of declaring
// it (a declared dependency would make the workspace graph circular).
import { encodeFromF32, writeSafetensors } from "../../../packages/core-tensors/src/index.js";

/** One tensor of a tiny layout: its real key name and a small shape. */
export type TinyTensor = readonly [name: string, shape: readonly number[]];

/**
 * The smallest layout that architecture detection still calls SD1: real LDM key names of the
 * text encoder, the VAE and the UNet, and cross-attention `to_k` with SD1's 768-wide context.
 */
export const TINY_SD1_LAYOUT: readonly TinyTensor[] = [
  ["cond_stage_model.transformer.text_model.final_layer_norm.weight", [8]],
  ["first_stage_model.decoder.conv_in.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.0.0.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [2, 768]],
  ["model.diffusion_model.out.2.bias", [4]],
];

export interface TinySd1ModelOptions {
  /** Varies the values between models (default 0). */
  readonly seed?: number;
  /** The tensors to write (default {@link TINY_SD1_LAYOUT}). */
  readonly layout?: readonly TinyTensor[];
  /** Element `k` of tensor `i` (default `sin(seed·7 + i·3 + k)`: smooth, distinct per model). */
  readonly value?: (tensor: number, element: number) => number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Writes a tiny F16 SD1-layout safetensors model at `path` and returns the path. */
export async function writeTinySd1Model(path: string, options: TinySd1ModelOptions = {}): Promise<string> {
  const seed = options.seed ?? 0;
  const value = options.value ?? ((i: number, k: number) => Math.sin(seed * 7 + i * 3 + k));
  const tensors = (options.layout ?? TINY_SD1_LAYOUT).map(([name, shape], i) => {
    const count = shape.reduce((a, b) => a * b, 1);
    return { name, dtype: "F16" as const, shape: [...shape], data: encodeFromF32(Float32Array.from({ length: count }, (_, k) => value(i, k)), "F16") };
  });
  await writeSafetensors(path, tensors, { ...options.metadata });
  return path;
}
