import { TINY_SD1, writeTinyModel } from "./write-tiny-model.js";

/** One tensor of a tiny layout: its real key name and a small shape. */
export type TinyTensor = readonly [name: string, shape: readonly number[]];

const SMALLEST_SD1_KEYS = new Set([
  "cond_stage_model.transformer.text_model.final_layer_norm.weight",
  "first_stage_model.decoder.conv_in.weight",
  "model.diffusion_model.input_blocks.0.0.weight",
  "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
  "model.diffusion_model.out.2.bias",
]);

/**
 * The smallest layout that architecture detection still calls SD1 (a subset of {@link TINY_SD1}):
 * real LDM key names of the text encoder, the VAE and the UNet, and cross-attention `to_k` with
 * SD1's 768-wide context.
 */
export const TINY_SD1_LAYOUT: readonly TinyTensor[] = TINY_SD1.filter((t) => SMALLEST_SD1_KEYS.has(t.name)).map((t) => [t.name, t.shape]);

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
  const layout = (options.layout ?? TINY_SD1_LAYOUT).map(([name, shape]) => ({ name, shape }));
  const value = options.value ?? ((i: number, k: number) => Math.sin(seed * 7 + i * 3 + k));
  return writeTinyModel(path, { seed, dtype: "F16", layout, value, metadata: options.metadata });
}
