import { jsonNestsDeeperThan } from "../json-nests-deeper-than.js";
import type { MergePlan } from "./merge-plan.js";

export interface MergeMetadataOptions {
  /** `__metadata__` of each input, in plan order (their recipes become ancestry). */
  readonly parentMetadata: readonly Readonly<Record<string, string>>[];
  /** The effective manifest (user's manifest with command-line overrides applied). */
  readonly manifest?: unknown;
  readonly vae?: { readonly name: string; readonly sha256?: string | undefined } | undefined;
  readonly toolVersion: string;
  /** ISO timestamp; injectable so tests are deterministic. */
  readonly timestamp?: string;
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
  const recipe = {
    type: "stmerge",
    algorithm: plan.method,
    method: plan.method,
    params: plan.params,
    models: plan.models.map((m) => ({ hash: m.sha256 ?? "unknown", name: m.name, weight: m.weight, index: m.index })),
    blocks: plan.blocks.length > 1 ? Object.fromEntries(plan.blocks.map((b) => [b.block, { weights: b.weights, ...b.params }])) : undefined,
    seed: plan.method === "dare" ? plan.seed : undefined,
    output_precision: plan.outputPrecision,
    pruned: plan.pruned.length,
    vae: options.vae ? { name: options.vae.name, hash: options.vae.sha256 ?? "unknown" } : undefined,
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
        legacy_hash: m.sha256.slice(0, 8),
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
  metadata.sd_merge_recipe = JSON.stringify(recipe);
  metadata.sd_merge_models = JSON.stringify(ancestry);
  if (options.manifest !== undefined) metadata.stmerge_manifest = JSON.stringify(options.manifest);
  metadata.merge_tool = "stmerge";
  metadata.merge_tool_version = options.toolVersion;
  metadata.merge_timestamp = options.timestamp ?? new Date().toISOString();
  metadata.merge_precision = plan.outputPrecision;
  return metadata;
}
