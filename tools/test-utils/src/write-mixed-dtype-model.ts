import { writeTinyModel } from "./write-tiny-model.js";

/**
 * Writes the model the header readers' tests describe: three tensors of three dtypes (F16 [4, 3],
 * I64 [1, 5], F32 [2]: 19 parameters, 72 data bytes), all zero, listed out of key order, and a
 * `modelspec.title` of "tiny test model". Returns the path.
 */
export function writeMixedDtypeModel(path: string): Promise<string> {
  return writeTinyModel(path, {
    seed: 0,
    layout: [
      { name: "model.diffusion_model.out.2.weight", dtype: "F16", shape: [4, 3] },
      { name: "cond_stage_model.transformer.text_model.embeddings.position_ids", dtype: "I64", shape: [1, 5] },
      { name: "first_stage_model.encoder.conv_in.bias", dtype: "F32", shape: [2] },
    ],
    value: () => 0,
    metadata: { "modelspec.title": "tiny test model" },
  });
}
