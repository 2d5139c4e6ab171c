import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve, sep } from "node:path";
import type { z } from "zod";
import { jsonNestsDeeperThan } from "../json-nests-deeper-than.js";
import { MergeError } from "../merge-error.js";
import { didYouMean } from "./closest-name.js";
import { ManifestSchema, LoraEntrySchema, ModelEntrySchema, OutputObjectSchema, VaeObjectSchema, type ParsedManifest } from "./manifest-schema.js";

export interface ManifestModel {
  /** Path as written in the manifest. */
  readonly path: string;
  /** Absolute path the merge reads. */
  readonly resolvedPath: string;
  readonly weight: number;
  readonly architecture: string | undefined;
  readonly index: number;
  readonly sha256: string | undefined;
  readonly crc32: string | undefined;
  readonly precisionDetected: string | undefined;
  readonly blockWeights: Readonly<Record<string, number>> | readonly number[];
}

export interface LoadedManifest {
  /** Absolute path of the manifest file (or "<memory>"). */
  readonly file: string;
  readonly dir: string;
  /** Models sorted by index (0 is the primary/base). */
  readonly models: readonly ManifestModel[];
  readonly vae: { readonly path: string; readonly resolvedPath: string; readonly sha256: string | undefined } | undefined;
  readonly output: { readonly path: string; readonly resolvedPath: string };
  /** LoRAs to bake into the merged tensors, in order. */
  readonly loras: readonly { readonly path: string; readonly resolvedPath: string; readonly strength: number }[];
  readonly raw: ParsedManifest;
  /** The manifest text as the user wrote it (recorded in the output's metadata). */
  readonly text: string;
  readonly warnings: readonly string[];
}

export const DEFAULT_OUTPUT_FILENAME = "merged_output.safetensors";
/** Deepest JSON nesting of a manifest (real ones are 4 deep). */
export const MAX_MANIFEST_DEPTH = 64;

/** The fields allowed where an unknown key was found, for a did-you-mean. */
function fieldsAt(path: readonly PropertyKey[]): string[] {
  const shape = path.length === 0 ? ManifestSchema.shape : path[0] === "models" && path.length === 2 ? ModelEntrySchema.shape : path[0] === "vae" ? VaeObjectSchema.shape : path[0] === "output" ? OutputObjectSchema.shape : path[0] === "loras" && path.length === 2 ? LoraEntrySchema.shape : undefined;
  return shape ? Object.keys(shape) : [];
}

function formatIssues(error: z.ZodError): string {
  // Unknown keys first: a misspelt field (`wieght`) also reports the real one as missing.
  const issues = [...error.issues].sort((a, b) => Number(b.code === "unrecognized_keys") - Number(a.code === "unrecognized_keys"));
  return issues
    .map((i) => {
      const where = i.path.length ? i.path.join(".") : "(root)";
      if (i.code !== "unrecognized_keys") return `${where}: ${i.message}`;
      const known = fieldsAt(i.path);
      return i.keys.map((k) => `${[...i.path, k].join(".")}: unknown field${didYouMean(k, known)}${known.length ? ` (fields here: ${known.join(", ")})` : ""}`).join("; ");
    })
    .join("; ");
}

/**
 * A path as a manifest written on Windows holds it (`models\\a.safetensors`, by the Python tool
 * there), with `/` separators on Linux and macOS. A name that exists as written is kept: a
 * backslash is a legal file-name character there.
 */
export function portableManifestPath(path: string, dir: string): string {
  if (sep !== "/" || !path.includes("\\") || existsSync(resolve(dir, path))) return path;
  return path.replace(/\\/g, "/");
}

/**
 * Resolves a manifest path against the manifest's folder. The Python tool's scan of a relative
 * folder wrote paths relative to the *current* folder (its 0.6.3 path bug); when a path does not
 * exist under the manifest folder but does under `cwd`, that one is used, with a warning.
 */
export function resolveManifestPath(written: string, dir: string, cwd: string, warnings: string[]): string {
  const path = portableManifestPath(written, dir);
  if (isAbsolute(path)) return path;
  const candidate = resolve(dir, path);
  if (existsSync(candidate)) return candidate;
  const fromCwd = resolve(cwd, path);
  if (fromCwd !== candidate && existsSync(fromCwd)) {
    warnings.push(`${path}: not found next to the manifest; using ${fromCwd} (relative to the current folder, as the Python tool wrote it)`);
    return fromCwd;
  }
  return candidate;
}

/** Validates manifest JSON text. `file` names the manifest in errors and anchors relative paths. */
export function parseManifest(text: string, file: string, options: { cwd?: string } = {}): LoadedManifest {
  // A manifest is stringified into the output's metadata and printed: recursion must stay bounded.
  if (jsonNestsDeeperThan(text, MAX_MANIFEST_DEPTH)) throw new MergeError("MANIFEST_TOO_DEEP", `${file}: JSON nests deeper than ${MAX_MANIFEST_DEPTH} levels`, { file });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new MergeError("MANIFEST_NOT_JSON", `${file}: not valid JSON (${(error as Error).message})`, { file });
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) throw new MergeError("MANIFEST_INVALID", `${file}: ${formatIssues(parsed.error)}`, { file });
  const raw = parsed.data;
  const dir = dirname(resolve(file));
  const cwd = options.cwd ?? process.cwd();
  const warnings: string[] = [];

  const indices = raw.models.map((m, i) => m.index ?? i);
  const duplicates = [...new Set(indices.filter((x, i) => indices.indexOf(x) !== i))];
  if (duplicates.length) throw new MergeError("MANIFEST_DUPLICATE_INDEX", `${file}: duplicate model indices ${JSON.stringify(duplicates)}; each model needs a unique index`, { file });
  const sorted = [...indices].sort((a, b) => a - b);
  if (sorted.some((x, i) => x !== i)) throw new MergeError("MANIFEST_INDEX_GAP", `${file}: model indices must be contiguous from 0, got ${JSON.stringify(sorted)}`, { file });
  // Excluded models stay in the file (an editor's include/exclude) and out of everything below:
  // the merged ones are renumbered 0… in index order, so plans, metadata and recipes never see them.
  const kept = raw.models.map((m, i) => ({ m, index: indices[i]! })).filter(({ m }) => m.excluded !== true).sort((a, b) => a.index - b.index);
  if (kept.length === 0) throw new MergeError("MANIFEST_INVALID", `${file}: every model is excluded; at least one must be merged`, { file });
  if (kept.length < raw.models.length) {
    const anyIndex = raw.models.some((m) => m.index !== undefined);
    raw.models = kept.map(({ m }, index) => {
      const { excluded: _excluded, index: _index, ...entry } = m;
      return anyIndex ? { ...entry, index } : entry;
    });
    indices.splice(0, indices.length, ...raw.models.map((m, i) => m.index ?? i));
  }

  const models = raw.models
    .map((m, i): ManifestModel => ({
      path: m.path,
      resolvedPath: resolveManifestPath(m.path, dir, cwd, warnings),
      weight: m.weight,
      architecture: m.architecture,
      index: indices[i]!,
      sha256: m.sha256,
      crc32: m.crc32,
      precisionDetected: m.precision_detected,
      blockWeights: m.block_weights ?? {},
    }))
    .sort((a, b) => a.index - b.index);

  const vaeEntry = typeof raw.vae === "string" ? { path: raw.vae, sha256: raw.vae_sha256 ?? undefined } : raw.vae ?? undefined;
  const vae = vaeEntry ? { path: vaeEntry.path, resolvedPath: resolveManifestPath(vaeEntry.path, dir, cwd, warnings), sha256: vaeEntry.sha256 ?? undefined } : undefined;
  const outputPath = typeof raw.output === "string" ? raw.output : raw.output?.path ?? DEFAULT_OUTPUT_FILENAME;
  const output = { path: outputPath, resolvedPath: resolve(dir, portableManifestPath(outputPath, dir)) };

  const loras = (raw.loras ?? []).map((l) => ({ path: l.path, resolvedPath: resolveManifestPath(l.path, dir, cwd, warnings), strength: l.strength }));

  return { file, dir, models, vae, output, loras, raw, text, warnings };
}

/** Reads and validates a manifest file. The file is never modified. */
export async function loadManifest(file: string, options: { cwd?: string } = {}): Promise<LoadedManifest> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new MergeError(code === "ENOENT" ? "MANIFEST_NOT_FOUND" : "MANIFEST_UNREADABLE", `${file}: ${code === "ENOENT" ? "manifest not found" : `cannot read manifest (${code ?? (error as Error).message})`}`, { file, cause: error });
  }
  return parseManifest(text, resolve(file), options);
}
