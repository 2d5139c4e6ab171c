import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { collectModelFiles, hashFile, type ModelCache } from "@stmerge/cache";
import type { ProgressCallback } from "@stmerge/core-tensors";
import type { RecipeInput } from "@stmerge/merge-engine";
import { cacheNotUpdated, isCacheFailure, openCliCache, type CacheFlags } from "./cli-cache.js";
import type { CliIo } from "./cli-io.js";
import { CliError } from "./cli-error.js";

/** Where an input of a recorded merge was found. */
interface LocatedInput {
  readonly input: RecipeInput;
  readonly path: string;
  readonly foundBy: "cache" | "search";
}

export interface LocateOptions {
  readonly io: CliIo;
  readonly cache: CacheFlags;
  /** `--search` folders (searched with their subfolders). */
  readonly search: readonly string[];
  /** The merged file itself, never taken as an input. */
  readonly exclude: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressCallback;
  readonly warn: (text: string) => void;
}

export interface LocateResult {
  /** In the order of `inputs`. */
  readonly located: readonly LocatedInput[];
  /** Files hashed while searching (each recorded in the cache unless --no-cache). */
  readonly hashed: number;
}

/**
 * Finds the files of a recipe's inputs by SHA-256: first the metadata cache (a path it indexes
 * under that hash whose file is still there with the size and mtime it was hashed at), then the
 * `--search` folders, where only files of the recorded size are hashed (every model file when an
 * older recipe recorded no size), each file once, stopping as soon as all are found. What is
 * hashed is recorded in the cache. Inputs not found are one error naming each hash with its
 * recorded name and where it looked.
 */
export async function locateRecipeInputs(inputs: readonly RecipeInput[], options: LocateOptions): Promise<LocateResult> {
  const found = new Map<RecipeInput, LocatedInput>();
  const exclude = resolve(options.exclude);
  let cache: ModelCache | undefined = options.cache.cache === false ? undefined : openCliCache(options.io, options.cache, options.warn);
  const dropCache = (error: unknown) => {
    if (!isCacheFailure(error)) throw error;
    options.warn(cacheNotUpdated(error));
    cache = undefined;
  };

  if (cache) {
    try {
      for (const input of inputs) {
        const entry = await cache.store.getByHash(input.sha256);
        const paths = [...new Set([...(await cache.pathsOf(input.sha256)), ...(typeof entry?.path === "string" ? [entry.path] : [])])].filter((p) => resolve(p) !== exclude);
        const fresh = (await cache.lookupMany(paths)).find((l) => l.status === "fresh" && l.entry?.sha256 === input.sha256);
        if (fresh) found.set(input, { input, path: fresh.path, foundBy: "cache" });
      }
    } catch (error) {
      dropCache(error);
    }
  }

  let hashed = 0;
  const folders = options.search.map((s) => resolve(options.io.cwd, s));
  const sizes = new Map<string, number>();
  if (found.size < inputs.length && folders.length) {
    const files = (await collectModelFiles(folders, { recurse: true })).filter((f) => f !== exclude && ![...found.values()].some((l) => resolve(l.path) === f));
    for (const f of files) {
      const info = await stat(f).catch(() => undefined);
      if (info?.isFile()) sizes.set(f, info.size);
    }
    // Only files some missing input could be: its recorded size, or any when no size was recorded.
    const wanted = (f: string) => inputs.filter((i) => !found.has(i) && (i.sizeBytes === undefined || i.sizeBytes === sizes.get(f)));
    const queue = files.filter((f) => sizes.has(f) && wanted(f).length > 0);
    for (const f of queue) {
      const open = wanted(f);
      if (open.length === 0) continue;
      options.signal?.throwIfAborted();
      let sha256: string | undefined;
      if (cache) {
        const result = await cache
          .identify([f], { algorithms: ["sha256"], ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: options.onProgress } : {}), onWriteError: (e) => (options.warn(cacheNotUpdated(e)), (cache = undefined)) })
          .catch((error: unknown) => (dropCache(error), undefined));
        sha256 = result?.[0]?.entry.sha256;
        if (result?.[0] && !result[0].fromCache) hashed++;
      }
      if (sha256 === undefined) {
        const result = await hashFile(f, { algorithms: ["sha256"], ...(options.signal ? { signal: options.signal } : {}), ...(options.onProgress ? { onProgress: (e) => options.onProgress!({ ...e, detail: f }) } : {}) });
        sha256 = result.hashes.sha256!;
        hashed++;
      }
      for (const input of open) if (input.sha256 === sha256 && !found.has(input)) found.set(input, { input, path: f, foundBy: "search" });
    }
  }

  const missing = inputs.filter((i) => !found.has(i));
  if (missing.length) {
    const sameSize = (i: RecipeInput) => [...sizes.values()].filter((s) => s === i.sizeBytes).length;
    const searched = (i: RecipeInput) => (!folders.length ? "" : i.sizeBytes === undefined ? "; no size recorded, every model file searched" : `; ${sameSize(i)} file(s) of its size, ${i.sizeBytes} bytes, searched`);
    const what = missing.map((i) => `${i.role === "vae" ? "the VAE" : `model ${i.index}`} ${JSON.stringify(i.name)} (sha256 ${i.sha256}${searched(i)})`).join(", ");
    const where = [options.cache.cache === false ? "not in the cache (--no-cache)" : "looked in the metadata cache", folders.length ? `in ${folders.join(", ")}` : "no --search folders given"].join("; ");
    throw new CliError("RECIPE_INPUTS_NOT_FOUND", `${exclude}: ${missing.length} input(s) of the recipe not found: ${what}; ${where}`, { file: exclude });
  }
  return { located: inputs.map((i) => found.get(i)!), hashed };
}
