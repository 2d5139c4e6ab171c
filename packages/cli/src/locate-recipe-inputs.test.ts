import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RecipeInput } from "@stmerge/merge-engine";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryIo } from "./cli-io.js";
import { locateRecipeInputs, type LocateOptions } from "./locate-recipe-inputs.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-locate-"));
  mkdirSync(join(dir, "a", "deep"), { recursive: true });
  mkdirSync(join(dir, "b"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
function file(rel: string, bytes: number, fill: number): string {
  const path = join(dir, rel);
  writeFileSync(path, Buffer.alloc(bytes, fill));
  return path;
}
const input = (index: number, path: string, sizeBytes: number | undefined = readFileSync(path).length): RecipeInput => ({ index, role: "model", sha256: sha(path), name: `recorded-${index}.safetensors`, sizeBytes, pathHint: "old/place.safetensors" });

function options(extra: Partial<LocateOptions> & { hashedFiles?: string[] } = {}): LocateOptions {
  const seen = extra.hashedFiles;
  return {
    io: memoryIo({ cwd: dir, env: { STMERGE_CACHE: join(dir, "cache.json") } }),
    cache: {},
    search: ["a", "b"],
    exclude: join(dir, "merged.safetensors"),
    warn: () => undefined,
    ...(seen ? { onProgress: (e: { detail?: string }) => void (e.detail && !seen.includes(e.detail) && seen.push(e.detail)) } : {}),
    ...extra,
  };
}

describe("locateRecipeInputs", () => {
  it("hashes only files of the recorded size, in subfolders too, and records them in the cache", async () => {
    const x = file("a/deep/x.safetensors", 3000, 1);
    const y = file("b/y.ckpt", 5000, 2);
    file("a/aaa-same-size-decoy.safetensors", 3000, 9);
    file("a/other-size.safetensors", 4000, 1);
    file("a/not-a-model.txt", 3000, 1);
    const hashedFiles: string[] = [];
    const r = await locateRecipeInputs([input(0, x), input(1, y)], options({ hashedFiles }));
    expect(r.located.map((l) => [l.path, l.foundBy])).toEqual([
      [x, "search"],
      [y, "search"],
    ]);
    expect(hashedFiles.sort()).toEqual([x, y, join(dir, "a", "aaa-same-size-decoy.safetensors")].sort());
    const cache = JSON.parse(readFileSync(join(dir, "cache.json"), "utf8")) as { paths: Record<string, { sha256: string }> };
    expect(cache.paths[x]?.sha256).toBe(sha(x));
    // Found through the cache next time, without hashing or --search.
    const again: string[] = [];
    const r2 = await locateRecipeInputs([input(0, x), input(1, y)], options({ search: [], hashedFiles: again }));
    expect(r2.located.map((l) => l.foundBy)).toEqual(["cache", "cache"]);
    expect(again).toEqual([]);
  });

  it("skips a cached file changed since it was hashed, and hashes every model file when no size was recorded", async () => {
    const x = file("a/x.safetensors", 2000, 3);
    const want = input(0, x, undefined);
    await locateRecipeInputs([want], options());
    writeFileSync(x, Buffer.alloc(2000, 4)); // same size, new content and mtime
    utimesSync(x, new Date(), new Date(Date.now() + 5000));
    const copy = file("b/copy.safetensors", 2000, 3);
    const hashedFiles: string[] = [];
    const r = await locateRecipeInputs([want], options({ hashedFiles }));
    expect(r.located[0]).toMatchObject({ path: copy, foundBy: "search" });
    expect(hashedFiles.sort()).toEqual([x, copy].sort());
  });

  it("works without the cache (--no-cache), and names each missing input with where it looked", async () => {
    const x = file("a/x.safetensors", 1000, 5);
    const gone = input(1, file("gone.bin", 1200, 6));
    rmSync(join(dir, "gone.bin"));
    const run = locateRecipeInputs([input(0, x), gone], options({ cache: { cache: false } }));
    await expect(run).rejects.toMatchObject({
      code: "RECIPE_INPUTS_NOT_FOUND",
      message: `${join(dir, "merged.safetensors")}: 1 input(s) of the recipe not found: model 1 "recorded-1.safetensors" (sha256 ${gone.sha256}; 0 file(s) of its size, 1200 bytes, searched); not in the cache (--no-cache); in ${join(dir, "a")}, ${join(dir, "b")}`,
    });
    expect(() => readFileSync(join(dir, "cache.json"))).toThrow();
  });

  it("never takes the merged file itself, and stops at an interrupt", async () => {
    const merged = file("a/merged.safetensors", 800, 7);
    await expect(locateRecipeInputs([input(0, merged)], options({ exclude: merged }))).rejects.toMatchObject({ code: "RECIPE_INPUTS_NOT_FOUND" });
    const x = file("b/x.safetensors", 800, 8);
    const controller = new AbortController();
    controller.abort();
    await expect(locateRecipeInputs([input(0, x)], options({ signal: controller.signal }))).rejects.toThrow();
  });
});
