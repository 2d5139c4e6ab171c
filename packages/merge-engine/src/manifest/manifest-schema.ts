import { z } from "zod";

/**
 * The merge manifest: the format the Python tool 0.6 writes (every field of it loads unchanged,
 * legacy string forms of `vae`/`output` included) plus optional stmerge extensions for methods,
 * block weights and plugins. Paths are relative to the manifest's folder.
 */
const sha256 = z.string().regex(/^[0-9a-fA-F]{64}$/, "a SHA-256 is 64 hex digits");
const crc32 = z.string().regex(/^[0-9a-fA-F]{8}$/, "a CRC32 is 8 hex digits");
const precisionDetected = z.enum(["fp16", "fp32", "bf16", "unknown"]);
const blockValues = z.union([
  z.record(z.string().regex(/^[A-Z][A-Z0-9]*$/, "block names are upper case, e.g. IN04"), z.number()),
  z.array(z.number()).min(1).describe("SuperMerger-style list in block order: SD1 26 values (BASE, IN00 … OUT11), SDXL 20, Flux 61; one more adds VAE"),
]);

export const ModelEntrySchema = z
  .strictObject({
    path: z.string().min(1).describe("Model file, relative to the manifest's folder or absolute"),
    weight: z.number().describe("Weight of this model (weighted_sum, ties, dare)"),
    architecture: z.string().optional().describe("Label from scan, informational: SD1.5, SDXL, Pony, ..."),
    index: z.number().int().min(0).optional().describe("Merge order, contiguous from 0; model 0 is the primary/base"),
    sha256: sha256.optional(),
    crc32: crc32.optional(),
    precision_detected: precisionDetected.optional(),
    block_weights: blockValues.optional().describe("Per-block weight overriding `weight`, e.g. {\"IN04\": 0.2} or a 26/20-value list"),
    excluded: z.boolean().optional().describe("true: kept in the manifest but left out of the merge (stmerge edit's include/exclude); the models merged are renumbered in index order"),
  })
  .describe("One input model");

export const VaeObjectSchema = z.strictObject({
  path: z.string().min(1),
  sha256: sha256.optional(),
  crc32: crc32.optional(),
  precision_detected: precisionDetected.optional(),
});

export const OutputObjectSchema = z.strictObject({
  path: z.string().min(1),
  sha256: sha256.optional(),
  precision_written: z.string().optional(),
});

export const LoraEntrySchema = z
  .strictObject({
    path: z.string().min(1).describe("LoRA file (safetensors), relative to the manifest's folder or absolute"),
    strength: z.number().default(1).describe("Multiplier m in W′ = W + m·scale·ΔW (default 1)"),
  })
  .describe("A LoRA baked into the merged output");

export const ManifestSchema = z
  .strictObject({
    $schema: z.string().optional(),
    models: z.array(ModelEntrySchema).min(1),
    vae: z.union([VaeObjectSchema, z.string().min(1), z.null()]).optional().describe("VAE to bake in; a bare string is the legacy form"),
    vae_sha256: sha256.nullish().describe("Legacy companion of a string `vae`"),
    output: z.union([OutputObjectSchema, z.string().min(1)]).optional().describe("Output file; default merged_output.safetensors"),
    output_sha256: sha256.nullish().describe("Legacy companion of a string `output`"),
    output_precision: z.enum(["match", "fp16", "fp32", "bf16"]).default("match"),
    device: z.string().default("cpu").describe("cpu, gpu, auto (cuda and cuda:N are read as gpu)"),
    prune: z.boolean().default(true),
    overwrite: z.boolean().default(false).describe("Read for compatibility and ignored: only --overwrite replaces an existing output"),
    merge_method: z.string().default("weighted_sum"),
    consensus_exponent: z.number().int().min(0).default(4),
    merge_params: z.record(z.string(), z.unknown()).optional().describe("Parameters of the merge method, e.g. {\"alpha\": 0.5}"),
    block_params: z.record(z.string(), blockValues).optional().describe("Per-block values of method parameters, e.g. {\"alpha\": {\"OUT03\": 0.8}}"),
    time_embed_block: z.enum(["BASE", "IN00"]).optional().describe("Block of time_embed/label_emb keys (default BASE)"),
    seed: z.number().int().optional().describe("Seed of randomised methods (dare)"),
    alpha: z
      .union([z.number(), blockValues])
      .optional()
      .describe("Two-model α: weighted_sum of two models gives A·(1−α) + B·α (scalar, or per block as a SuperMerger list or by name; unnamed blocks 0.5); for add_difference/train_difference it is the multiplier M"),
    loras: z.array(LoraEntrySchema).optional().describe("LoRAs baked into the merged tensors in the same pass, in this order; every module must fit a merged tensor"),
    plugins: z.array(z.string().min(1)).optional().describe("Plugin modules the recipe needs; never loaded from the manifest (the merge stops and names the --plugin flags that would load them)"),
  })
  .describe("stmerge / Model Merger merge manifest");

export type ManifestInput = z.input<typeof ManifestSchema>;
export type ParsedManifest = z.output<typeof ManifestSchema>;

/** The JSON Schema shipped for editors, generated from the validator. */
export function manifestJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ManifestSchema, { io: "input", target: "draft-2020-12" }) as Record<string, unknown>;
}
