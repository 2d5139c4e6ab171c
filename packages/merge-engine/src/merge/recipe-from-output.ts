import { basename, resolve } from "node:path";
import { readSafetensorsHeader } from "@stmerge/core-tensors";
import { jsonNestsDeeperThan } from "../json-nests-deeper-than.js";
import { parseManifest, type LoadedManifest } from "../manifest/load-manifest.js";
import { ManifestSchema } from "../manifest/manifest-schema.js";
import { MergeError } from "../merge-error.js";
import { createMethodRegistry, type MethodRegistry } from "../methods/method-registry.js";

/** Version of the recipe this stmerge writes (`stmerge_recipe_version`) and the newest it reads. */
export const RECIPE_FORMAT_VERSION = 1;
/** Largest `stmerge_manifest` / `sd_merge_recipe` value read (a real one is a few KiB). */
export const MAX_RECIPE_BYTES = 1024 * 1024;
/** Largest `sd_merge_models` value read for name and size hints (stmerge caps its own at 1 MiB). */
export const MAX_ANCESTRY_BYTES = 4 * 1024 * 1024;
/** Most inputs a recipe may name (real merges have 2 to a few dozen). */
export const MAX_RECIPE_INPUTS = 256;
const MAX_DEPTH = 64;
const MAX_HINT_CHARS = 255;

/** One input of a recorded merge, known by its SHA-256; everything else is a hint from the file's metadata. */
export interface RecipeInput {
  /** Model index in the recipe (model 0 is the base); -1 for the VAE. */
  readonly index: number;
  readonly role: "model" | "vae";
  /** Lower-case SHA-256: the only thing an input is matched by. */
  readonly sha256: string;
  /** The file name it had (from `sd_merge_models`, else the recipe), at most 255 characters. */
  readonly name: string;
  /** Its size in bytes when the metadata recorded it (stmerge writes `file_size` in `sd_merge_models`, and in the recipe's `vae`). */
  readonly sizeBytes: number | undefined;
  /** The path as the embedded manifest wrote it: a hint for people, never opened or written. */
  readonly pathHint: string;
}

export interface OutputRecipe {
  /** The merged file it was read from. */
  readonly file: string;
  readonly method: string;
  /** Models in index order. */
  readonly models: readonly RecipeInput[];
  readonly vae: RecipeInput | undefined;
  /** Plugin modules the embedded manifest named: hints for the refusal message, never loaded. */
  readonly pluginHints: readonly string[];
  /** `merge_tool_version` of the file, when given. */
  readonly toolVersion: string | undefined;
  /** The embedded manifest document (validated), to rebuild a manifest once the inputs are found. */
  readonly document: Readonly<Record<string, unknown>>;
}

export interface RecipeFromOutputOptions {
  /** Methods available; default the built-ins. */
  readonly registry?: MethodRegistry;
  /** Whether the user gave `--plugin` modules (then an unknown method is left to the merge, which loads them first). */
  readonly pluginsGiven?: boolean;
}

const SHA256 = /^[0-9a-f]{64}$/;

function refuse(code: string, file: string, why: string): never {
  throw new MergeError(code, `${file}: ${why}`, { file });
}

/** A JSON object from a metadata value, within a size and depth budget; undefined when absent, malformed or over budget. */
function boundedObject(text: string | undefined, maxBytes: number): Record<string, unknown> | undefined {
  if (text === undefined || text.length > maxBytes || !text.startsWith("{") || jsonNestsDeeperThan(text, MAX_DEPTH)) return undefined;
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const hint = (v: unknown): string | undefined => (typeof v === "string" && v.length > 0 ? v.slice(0, MAX_HINT_CHARS) : undefined);
const own = (o: Record<string, unknown> | undefined, k: string): unknown => (o && Object.hasOwn(o, k) ? o[k] : undefined);

/**
 * Reads the recipe of a merge stmerge wrote, from the file's header only: the embedded
 * `stmerge_manifest` (method, parameters, weights, block values, precision, VAE) and each input's
 * SHA-256 (from `sd_merge_recipe`, else the manifest), with its name and size from
 * `sd_merge_models` as hints. All of it is untrusted data: values are read within size and depth
 * budgets, plugins it names are never loaded (a method that is not available is refused with the
 * `--plugin` hint), and its paths are hints only. A file without a stmerge recipe, with a recipe
 * of a newer or unknown format, or with an input recorded without a SHA-256, is refused with one
 * line naming the file.
 */
export async function readRecipeFromOutput(path: string, options: RecipeFromOutputOptions = {}): Promise<OutputRecipe> {
  const file = resolve(path);
  const { metadata } = await readSafetensorsHeader(file);
  const manifestText = metadata.stmerge_manifest;
  const tool = hint(metadata.merge_tool_version);
  const writtenBy = tool ? ` (written by stmerge ${tool})` : "";
  if (manifestText === undefined) {
    const other = metadata.sd_merge_recipe !== undefined ? "; its sd_merge_recipe was written by another merger and does not record enough to re-run" : "";
    refuse("RECIPE_MISSING", file, `no stmerge recipe in its metadata (stmerge_manifest is absent${other}); only merges written by stmerge can be reproduced`);
  }
  const version = metadata.stmerge_recipe_version;
  if (version !== undefined && !(/^[1-9][0-9]{0,5}$/.test(version) && Number(version) <= RECIPE_FORMAT_VERSION)) {
    refuse("RECIPE_FORMAT_UNKNOWN", file, `recipe format ${JSON.stringify(version.slice(0, 20))}${writtenBy} is not one this stmerge reads (format ${RECIPE_FORMAT_VERSION}); a newer stmerge can re-run it`);
  }
  if (manifestText.length > MAX_RECIPE_BYTES) refuse("RECIPE_TOO_LARGE", file, `its stmerge_manifest is ${manifestText.length} bytes, over the ${MAX_RECIPE_BYTES}-byte limit of a recipe`);
  const document = boundedObject(manifestText, MAX_RECIPE_BYTES);
  if (!document) refuse("RECIPE_FORMAT_UNKNOWN", file, `its stmerge_manifest is not a JSON object nesting at most ${MAX_DEPTH} levels${writtenBy}`);
  const parsed = ManifestSchema.safeParse(document);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    refuse("RECIPE_FORMAT_UNKNOWN", file, `its stmerge_manifest is not a manifest this stmerge reads${writtenBy}: ${first ? `${first.path.join(".") || "(root)"}: ${first.message}` : "invalid"}`.slice(0, 400));
  }
  const raw = parsed.data;
  if (raw.models.length > MAX_RECIPE_INPUTS) refuse("RECIPE_TOO_LARGE", file, `its recipe names ${raw.models.length} models, over the limit of ${MAX_RECIPE_INPUTS}`);

  const pluginHints = (raw.plugins ?? []).map((p) => p.slice(0, MAX_HINT_CHARS));
  const registry = options.registry ?? createMethodRegistry();
  if (!registry.has(raw.merge_method) && !options.pluginsGiven) {
    const flags = pluginHints.length ? pluginHints.map((p) => `--plugin ${/\s/.test(p) ? JSON.stringify(p) : p}`).join(" ") : "--plugin <module>";
    refuse("RECIPE_NEEDS_PLUGIN", file, `its recipe uses merge method ${JSON.stringify(raw.merge_method.slice(0, 60))}, which is not built in; plugins never load from a file's metadata: if you trust the plugin that provides it, run again with ${flags}`);
  }

  const recipe = boundedObject(metadata.sd_merge_recipe, MAX_RECIPE_BYTES);
  const ancestry = boundedObject(metadata.sd_merge_models, MAX_ANCESTRY_BYTES);
  const recipeModels = Array.isArray(own(recipe, "models")) ? (own(recipe, "models") as unknown[]) : [];
  const describe = (index: number, role: RecipeInput["role"], written: string, manifestSha: string | undefined, recorded: unknown, recordedName: unknown, recordedSize?: unknown): RecipeInput => {
    const fromRecipe = typeof recorded === "string" ? recorded.toLowerCase() : undefined;
    const sha256 = fromRecipe && SHA256.test(fromRecipe) ? fromRecipe : manifestSha?.toLowerCase();
    const label = role === "vae" ? "the VAE" : `model ${index}`;
    if (!sha256) refuse("RECIPE_INPUT_UNHASHED", file, `${label} (${JSON.stringify(basename(written).slice(0, MAX_HINT_CHARS))}) was merged without a SHA-256, so it cannot be found again (hash inputs before merging: stmerge hash <file>)`);
    const known = own(ancestry, sha256);
    const info = known !== null && typeof known === "object" && !Array.isArray(known) ? (known as Record<string, unknown>) : undefined;
    const size = own(info, "file_size") ?? recordedSize;
    return {
      index,
      role,
      sha256,
      name: hint(own(info, "name")) ?? hint(recordedName) ?? basename(written).slice(0, MAX_HINT_CHARS),
      sizeBytes: typeof size === "number" && Number.isSafeInteger(size) && size >= 0 ? size : undefined,
      pathHint: written.slice(0, MAX_HINT_CHARS * 4),
    };
  };
  const indices = raw.models.map((m, i) => m.index ?? i);
  const models = raw.models
    .map((m, i) => {
      const index = indices[i]!;
      const entry = recipeModels.find((r) => own(r as Record<string, unknown>, "index") === index) as Record<string, unknown> | undefined;
      return describe(index, "model", m.path, m.sha256, own(entry, "hash"), own(entry, "name"));
    })
    .sort((a, b) => a.index - b.index);
  const vaeEntry = typeof raw.vae === "string" ? { path: raw.vae, sha256: raw.vae_sha256 ?? undefined } : raw.vae ?? undefined;
  const recipeVae = own(recipe, "vae") as Record<string, unknown> | undefined;
  const vae = vaeEntry ? describe(-1, "vae", vaeEntry.path, vaeEntry.sha256 ?? undefined, own(recipeVae, "hash"), own(recipeVae, "name"), own(recipeVae, "file_size")) : undefined;
  return { file, method: raw.merge_method, models, vae, pluginHints, toolVersion: tool, document };
}

/**
 * The manifest to re-run a recipe with the inputs found: the embedded document with each model's
 * (and the VAE's) path replaced by the located file and its SHA-256 recorded, without the
 * recipe's output and plugins (the caller names the output; plugins come only from `--plugin`).
 * Errors name the merged file; `cwd` is irrelevant (every path is absolute).
 */
export function manifestFromRecipe(recipe: OutputRecipe, located: { readonly models: readonly string[]; readonly vae?: string | undefined }): LoadedManifest {
  if (located.models.length !== recipe.models.length) throw new MergeError("RECIPE_INPUTS_MISMATCH", `${recipe.file}: ${recipe.models.length} models recorded, ${located.models.length} located`, { file: recipe.file });
  if (recipe.vae && !located.vae) throw new MergeError("RECIPE_INPUTS_MISMATCH", `${recipe.file}: the recipe bakes in a VAE, and none was located`, { file: recipe.file });
  const doc: Record<string, unknown> = { ...recipe.document };
  const written = doc.models as Record<string, unknown>[];
  doc.models = written.map((m, i) => {
    const index = typeof m.index === "number" ? m.index : i;
    const at = recipe.models.findIndex((r) => r.index === index);
    return { ...m, path: resolve(located.models[at]!), sha256: recipe.models[at]!.sha256 };
  });
  if (recipe.vae) {
    doc.vae = { path: resolve(located.vae!), sha256: recipe.vae.sha256 };
    delete doc.vae_sha256;
  }
  delete doc.output;
  delete doc.output_sha256;
  delete doc.plugins;
  doc.overwrite = false;
  return parseManifest(JSON.stringify(doc), recipe.file, { cwd: resolve(recipe.file, "..") });
}
