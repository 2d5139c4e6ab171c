import { jsonNestsDeeperThan } from "../json-nests-deeper-than.js";
import type { MergePlan } from "./merge-plan.js";
import { RECIPE_FORMAT_VERSION } from "./recipe-from-output.js";

export interface MergeMetadataOptions {
  /** `__metadata__` of each input, in plan order (their recipes become ancestry). */
  readonly parentMetadata: readonly Readonly<Record<string, string>>[];
  /** The effective manifest (user's manifest with command-line overrides applied). */
  readonly manifest?: unknown;
  readonly vae?: { readonly name: string; readonly sha256?: string | undefined; readonly sizeBytes?: number | undefined } | undefined;
  readonly toolVersion: string;
  /** ISO timestamp; injectable so tests are deterministic. */
  readonly timestamp?: string;
  /** File name of the output: A1111's `custom_name` and ModelSpec's `modelspec.title` (without extension). */
  readonly outputName?: string;
  /** A1111's legacy `model_hash` of each input, in plan order (`legacyModelHash`). */
  readonly legacyHashes?: readonly (string | undefined)[];
  /** Size in bytes of each input, in plan order: `file_size` in `sd_merge_models`, so `merge --from` can look for it by size. */
  readonly inputSizes?: readonly (number | undefined)[];
  /** Cap of the serialized `sd_merge_models` ancestry (default 1 MiB); deeper recipes are dropped first. */
  readonly ancestryLimitBytes?: number;
}

const MODELSPEC_KEPT = /^modelspec\.(architecture|implementation|prediction_type|predict_key|resolution|sai_model_spec)$/;

/** Deepest nesting kept from a parent's recipe or ancestry: parents' metadata is data, and nothing may walk it recursively past this. */
export const MAX_ANCESTRY_DEPTH = 64;

/** A parent's JSON metadata value as an object; absent when malformed or nested past MAX_ANCESTRY_DEPTH (dropped, never walked). */
function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (!text || !text.startsWith("{") || jsonNestsDeeperThan(text, MAX_ANCESTRY_DEPTH)) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `__metadata__` of a merge output in the A1111 convention, values as JSON strings:
 * - `sd_merge_recipe`: this merge (method, parameters, models by SHA-256 with weights, per-block
 *   values, precision, VAE);
 * - `sd_merge_models`: SHA-256 → {name, legacy_hash, architecture, sd_merge_recipe of that
 *   parent}, updated with every parent's own `sd_merge_models`, so ancestry is kept;
 * - `stmerge_manifest`: the effective manifest, so the merge can be reproduced.
 * Models without a SHA-256 are recorded in the recipe as "unknown" but cannot key ancestry.
 */
export function buildMergeMetadata(plan: MergePlan, options: MergeMetadataOptions): Record<string, string> {
  const title = options.outputName?.replace(/\.[^.]*$/, "");
  const recipe = {
    type: "stmerge",
    ...a1111RecipeFields(plan, options, title),
    algorithm: plan.method,
    method: plan.method,
    params: plan.params,
    // Only what the merge used: weights of methods that ignore them are left out.
    models: plan.models.map((m) => ({ hash: m.sha256 ?? "unknown", name: m.name, ...(plan.usesWeights ? { weight: m.weight } : {}), index: m.index })),
    blocks: plan.blocks.length > 1 ? Object.fromEntries(plan.blocks.map((b) => [b.block, { ...(plan.usesWeights ? { weights: b.weights } : {}), ...b.params }])) : undefined,
    seed: typeof plan.params.seed === "number" ? plan.seed : undefined,
    output_precision: plan.outputPrecision,
    pruned: plan.pruned.length,
    vae: options.vae ? { name: options.vae.name, hash: options.vae.sha256 ?? "unknown", ...(options.vae.sizeBytes !== undefined ? { file_size: options.vae.sizeBytes } : {}) } : undefined,
  };

  const limit = options.ancestryLimitBytes ?? 1024 * 1024;
  // No prototype: a parent may name a model "__proto__" or "constructor".
  const ancestry = Object.create(null) as Record<string, unknown>;
  const parents: Record<string, unknown>[] = [];
  plan.models.forEach((m, i) => {
    const meta = options.parentMetadata[i] ?? {};
    if (m.sha256) {
      ancestry[m.sha256] = {
        name: m.name,
        ...(options.legacyHashes?.[i] ? { legacy_hash: options.legacyHashes[i] } : {}),
        ...(options.inputSizes?.[i] !== undefined ? { file_size: options.inputSizes[i] } : {}),
        architecture: m.architecture.label,
        sd_merge_recipe: parseJsonObject(meta.sd_merge_recipe) ?? null,
      };
    }
    const theirs = parseJsonObject(meta.sd_merge_models);
    if (theirs) parents.push(theirs);
  });
  // Parents' ancestry is merged in (A1111's .update()), as long as it fits under the cap: each
  // entry is serialized once (twice when its recipe must go), so time is linear in the input.
  let size = JSON.stringify(ancestry).length;
  const entrySize = (hash: string, info: unknown) => JSON.stringify(hash).length + 2 + JSON.stringify(info).length;
  for (const p of parents) {
    for (const [hash, info] of Object.entries(p)) {
      if (Object.hasOwn(ancestry, hash)) continue;
      const full = entrySize(hash, info);
      if (size + full <= limit) {
        ancestry[hash] = info;
        size += full;
        continue;
      }
      if (info === null || typeof info !== "object" || Array.isArray(info)) continue;
      const slim = { ...(info as Record<string, unknown>), sd_merge_recipe: null };
      const slimSize = entrySize(hash, slim);
      if (size + slimSize <= limit) {
        ancestry[hash] = slim;
        size += slimSize;
      }
    }
  }

  const metadata: Record<string, string> = { format: "pt" };
  for (const [k, v] of Object.entries(options.parentMetadata[0] ?? {})) if (MODELSPEC_KEPT.test(k)) metadata[k] = v;
  // ModelSpec's required title is the output's; its parents by their own titles, else file names.
  if (title) metadata["modelspec.title"] = title;
  metadata["modelspec.merged_from"] = plan.models.map((m, i) => options.parentMetadata[i]?.["modelspec.title"] ?? m.name.replace(/\.[^.]*$/, "")).join(", ");
  metadata.sd_merge_recipe = JSON.stringify(recipe);
  metadata.sd_merge_models = JSON.stringify(ancestry);
  if (options.manifest !== undefined) {
    metadata.stmerge_manifest = JSON.stringify(options.manifest);
    // `merge --from` refuses formats newer than it reads (see recipe-from-output.ts).
    metadata.stmerge_recipe_version = String(RECIPE_FORMAT_VERSION);
  }
  metadata.merge_tool = "stmerge";
  metadata.merge_tool_version = options.toolVersion;
  metadata.merge_timestamp = options.timestamp ?? new Date().toISOString();
  metadata.merge_precision = plan.outputPrecision;
  return metadata;
}

const A1111_INTERP: Readonly<Record<string, string>> = { weighted_sum: "Weighted sum", add_difference: "Add difference" };

/**
 * The fields A1111's merger writes in `sd_merge_recipe` (modules/extras.py), where they apply to
 * this merge: the three model hashes (full SHA-256, null when absent or unknown), the
 * interpolation method and multiplier M for the two recipes A1111 has (weighted sum of two
 * models: B's weight; add difference: alpha), and the output options.
 */
function a1111RecipeFields(plan: MergePlan, options: MergeMetadataOptions, title: string | undefined): Record<string, unknown> {
  const hash = (i: number) => plan.models[i]?.sha256 ?? null;
  const interp = A1111_INTERP[plan.method];
  const multiplier = plan.method === "weighted_sum" && plan.models.length === 2 ? plan.models[1]!.weight : plan.method === "add_difference" && typeof plan.params.alpha === "number" ? plan.params.alpha : undefined;
  const firstConv = plan.entries.find((e) => e.channels);
  return {
    primary_model_hash: hash(0),
    secondary_model_hash: hash(1),
    tertiary_model_hash: hash(2),
    ...(interp ? { interp_method: interp } : {}),
    ...(multiplier !== undefined && interp ? { multiplier } : {}),
    save_as_half: plan.outputPrecision === "fp16",
    custom_name: title ?? "",
    config_source: 0,
    bake_in_vae: options.vae?.name ?? "None",
    discard_weights: "",
    is_inpainting: firstConv?.channels?.total === 9 || plan.architecture.variant === "inpainting",
    is_instruct_pix2pix: firstConv?.channels?.total === 8 || plan.architecture.variant === "pix2pix",
  };
}
