import type { ArchitectureId } from "./architecture-signatures.js";

/**
 * Block-weighted merging: each key of a model belongs to one named block, and a manifest can
 * give a weight (or any block-wise parameter) per block. Rules are regexes tried in order; the
 * first match names the block, `$1` is replaced by the captured number (zero-padded to two).
 *
 * `time_embed` / `label_emb` go to BASE by default, as in sd-mecha and ComfyUI's grouping of
 * "everything outside the UNet stages"; SuperMerger, sd-meh and bbc-mc put them in IN00. Pass
 * `{ timeEmbedBlock: "IN00" }` to `blockOfKey` to reproduce SuperMerger presets exactly.
 */
export interface BlockRule {
  readonly pattern: RegExp;
  readonly block: string;
}

export interface BlockMap {
  /** Block names in their canonical (SuperMerger) order. */
  readonly blocks: readonly string[];
  readonly rules: readonly BlockRule[];
  /** Block of keys that match no rule. */
  readonly fallback: string;
}

const range = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(2, "0")}`);

/** Marker used in rules for the time-embedding keys, resolved by `timeEmbedBlock`. */
export const TIME_EMBED_BLOCK = "<time_embed>";

const UNET = "^(?:model\\.diffusion_model\\.|unet\\.)?";

function unetMap(inputs: number, outputs: number): BlockMap {
  return {
    blocks: ["BASE", ...range("IN", inputs), "M00", ...range("OUT", outputs), "VAE"],
    rules: [
      { pattern: new RegExp(`${UNET}(time_embed|label_emb)\\.`), block: TIME_EMBED_BLOCK },
      { pattern: new RegExp(`${UNET}input_blocks\\.(\\d+)\\.`), block: "IN$1" },
      { pattern: new RegExp(`${UNET}middle_block\\.`), block: "M00" },
      { pattern: new RegExp(`${UNET}output_blocks\\.(\\d+)\\.`), block: "OUT$1" },
      { pattern: new RegExp(`${UNET}out\\.`), block: `OUT${String(outputs - 1).padStart(2, "0")}` },
      { pattern: /^(first_stage_model|vae)\./, block: "VAE" },
    ],
    fallback: "BASE",
  };
}

/** SD1.x / SD2.x: BASE, IN00–IN11, M00, OUT00–OUT11 (+ VAE). */
export const SD1_BLOCK_MAP: BlockMap = unetMap(12, 12);
/** SDXL base and refiner: BASE, IN00–IN08, M00, OUT00–OUT08 (+ VAE). */
export const SDXL_BLOCK_MAP: BlockMap = unetMap(9, 9);

/** Flux (SuperMerger's 61 values, plus VAE): CLIP, T5, IN, D00–D18, S00–S37, OUT. */
export const FLUX_BLOCK_MAP: BlockMap = {
  blocks: ["BASE", "CLIP", "T5", "IN", ...range("D", 19), ...range("S", 38), "OUT", "VAE"],
  rules: [
    { pattern: /^text_encoders\.t5xxl\./, block: "T5" },
    { pattern: /^text_encoders\.clip/, block: "CLIP" },
    { pattern: /(^|\.)double_blocks\.(\d+)\./, block: "D$2" },
    { pattern: /(^|\.)single_blocks\.(\d+)\./, block: "S$2" },
    { pattern: /(^|\.)(img_in|txt_in|time_in|vector_in|guidance_in)\./, block: "IN" },
    { pattern: /(^|\.)final_layer\./, block: "OUT" },
    { pattern: /^(vae|first_stage_model)\./, block: "VAE" },
  ],
  fallback: "BASE",
};

/** SD3 / SD3.5 (ComfyUI prefixes): IN (embedders), J00–J37, OUT (final layer), VAE. */
export const SD3_BLOCK_MAP: BlockMap = {
  blocks: ["BASE", "IN", ...range("J", 38), "OUT", "VAE"],
  rules: [
    { pattern: /(^|\.)joint_blocks\.(\d+)\./, block: "J$2" },
    { pattern: /(^|\.)(pos_embed|x_embedder\.|context_embedder\.|y_embedder\.|t_embedder\.)/, block: "IN" },
    { pattern: /(^|\.)final_layer\./, block: "OUT" },
    { pattern: /^(vae|first_stage_model)\./, block: "VAE" },
  ],
  fallback: "BASE",
};

export const BLOCK_MAPS: Readonly<Partial<Record<ArchitectureId, BlockMap>>> = {
  sd1: SD1_BLOCK_MAP,
  sd2: SD1_BLOCK_MAP,
  sdxl: SDXL_BLOCK_MAP,
  "sdxl-refiner": SDXL_BLOCK_MAP,
  flux: FLUX_BLOCK_MAP,
  sd3: SD3_BLOCK_MAP,
};

export interface BlockOptions {
  /** Where `time_embed.*` and `label_emb.*` go: "BASE" (default, sd-mecha) or "IN00" (SuperMerger). */
  readonly timeEmbedBlock?: "BASE" | "IN00";
}

/** The block a key belongs to under a map; numbers are zero-padded (`IN04`, `D07`). */
export function blockOfKey(map: BlockMap, key: string, options: BlockOptions = {}): string {
  for (const rule of map.rules) {
    const m = rule.pattern.exec(key);
    if (!m) continue;
    if (rule.block === TIME_EMBED_BLOCK) return options.timeEmbedBlock ?? "BASE";
    return rule.block.replace(/\$(\d)/g, (_, i: string) => String(m[Number(i)] ?? "").padStart(2, "0"));
  }
  return map.fallback;
}

/**
 * The block map of an architecture; unknown architectures get a single BASE block (plus VAE),
 * so block weights still apply to the whole model.
 */
export function blockMapFor(architecture: ArchitectureId): BlockMap {
  return BLOCK_MAPS[architecture] ?? { blocks: ["BASE", "VAE"], rules: [{ pattern: /^(first_stage_model|vae)\./, block: "VAE" }], fallback: "BASE" };
}

/**
 * A SuperMerger-style list of block values (the form presets are shared in) as a record, by the
 * map's block order. Accepted lengths: every block; every block but VAE (SD1 26, SDXL 20 values,
 * VAE then follows BASE); every block but BASE and VAE (Flux 61). Undefined for other lengths.
 */
export function blockValuesFromList(map: BlockMap, list: readonly number[]): Record<string, number> | undefined {
  const candidates = [map.blocks, map.blocks.filter((b) => b !== "VAE"), map.blocks.filter((b) => b !== "VAE" && b !== "BASE")];
  const order = candidates.find((c) => c.length === list.length);
  return order && Object.fromEntries(order.map((b, i) => [b, list[i]!]));
}
