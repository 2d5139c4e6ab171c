import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend, fileIdentityOf, openSafetensors, sameFileIdentity, type FileIdentity, type InputReadTap, type KernelBackend, type OutputByteTap, type ProgressEvent } from "@stmerge/core-tensors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../manifest/load-manifest.js";
import { tempDir, writeTinyModel } from "@stmerge/test-utils";
import { runMerge } from "./run-merge.js";

let kernels: KernelBackend;
const dirs: string[] = [];
beforeAll(() => {
  kernels = createCpuKernelBackend({ workers: 0 });
});
afterAll(async () => {
  await kernels.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// The reference: node:crypto over the whole file read at once.
const sha256Of = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

/**
 * A stand-in for the cache's hasher: it checks that every chunk it is handed is the file's own
 * bytes at that offset, and answers the reference digest (the real hasher is tested in the cache
 * package and end to end through the CLI).
 */
function checkingHasher(path: string, log: { opened: string[]; chunks: number; mismatches: number; closed: number }): InputReadTap {
  const file = readFileSync(path);
  log.opened.push(path);
  return {
    bytesLeft: file.byteLength,
    bytesReadItself: 0,
    bytes(chunk, offset) {
      log.chunks++;
      if (!Buffer.from(chunk).equals(file.subarray(offset, offset + chunk.byteLength))) log.mismatches++;
    },
    async finish(options) {
      // As the real hasher does: reads the rest with progress, stopping at an abort.
      options?.onProgress?.({ phase: "hash", bytesDone: file.byteLength, bytesTotal: file.byteLength });
      if (options?.signal?.aborted) throw Object.assign(new Error(`${path}: hashing interrupted`), { code: "ABORTED" });
      return sha256Of(path);
    },
    close: async () => void log.closed++,
  };
}

async function setup(n: number, metadata: Record<number, Record<string, string>> = {}) {
  const dir = tempDir();
  dirs.push(dir);
  const files: string[] = [];
  for (let i = 0; i < n; i++) files.push(await writeTinyModel(join(dir, `model_${"abc"[i]}.safetensors`), { seed: i + 1, metadata: metadata[i] ?? {} }));
  const text = JSON.stringify({ models: files.map((_, i) => ({ path: `model_${"abc"[i]}.safetensors`, weight: 1 / n })), output: "out.safetensors" });
  writeFileSync(join(dir, "m.json"), text);
  return { dir, files, manifest: parseManifest(text, join(dir, "m.json")) };
}

/** An output tap that keeps a digest of what it is shown, in order. */
function digestTap(): OutputByteTap & { digest(): string; fed: number } {
  const hash = createHash("sha256");
  const tap = {
    fed: 0,
    bytes(chunk: Uint8Array, offset: number) {
      if (offset !== tap.fed) throw new Error(`out of order: ${offset} after ${tap.fed}`);
      hash.update(chunk);
      tap.fed += chunk.byteLength;
    },
    digest: () => hash.digest("hex"),
  };
  return tap;
}

async function metadataOf(path: string) {
  const s = await openSafetensors(path);
  try {
    return { ...s.metadata };
  } finally {
    await s.close();
  }
}

describe("runMerge learns its inputs' SHA-256 in the merge pass", () => {
  it("records the true SHA-256 of inputs nobody hashed, in the recipe and as ancestry keys; the output tap sees the finished file", async () => {
    const { files, manifest } = await setup(2);
    const log = { opened: [] as string[], chunks: 0, mismatches: 0, closed: 0 };
    const tap = digestTap();
    const phases = new Map<string, ProgressEvent>();
    const r = await runMerge(manifest, { kernels, hashInput: async (p) => checkingHasher(p, log), outputTap: tap, onProgress: (e) => phases.set(e.phase, e) });
    const truth = files.map(sha256Of);
    expect(log.opened.sort()).toEqual([...files].sort());
    expect(log.chunks).toBeGreaterThan(10);
    expect(log.mismatches).toBe(0);
    expect(log.closed).toBe(2);

    const md = await metadataOf(r.outputPath);
    expect(Object.keys(JSON.parse(md.sd_merge_models!)).sort()).toEqual([...truth].sort());
    const recipe = JSON.parse(md.sd_merge_recipe!);
    expect(recipe.models.map((m: { hash: string }) => m.hash)).toEqual(truth);
    expect([recipe.primary_model_hash, recipe.secondary_model_hash]).toEqual(truth);
    // No placeholder survives: every SHA-256-looking string in the header is an input's.
    const headerText = readFileSync(r.outputPath).subarray(0, 64 * 1024).toString("latin1");
    expect(new Set(headerText.match(/[0-9a-f]{64}/g))).toEqual(new Set(truth));

    expect(r.plan.models.map((m) => m.sha256)).toEqual(truth);
    expect(r.learnedHashes.map((l) => l.sha256).sort()).toEqual([...truth].sort());
    // The output's digest as the tap saw it is the digest of the file on disk.
    expect(tap.fed).toBe(readFileSync(r.outputPath).byteLength);
    expect(tap.digest()).toBe(sha256Of(r.outputPath));
    expect(phases.get("hash inputs")).toMatchObject({ itemsDone: 2, itemsTotal: 2 });
    expect(phases.get("hash output")?.bytesDone).toBe(tap.fed);
  });

  it("hashes only the inputs whose SHA-256 is not known", async () => {
    const { files, manifest } = await setup(3);
    const log = { opened: [] as string[], chunks: 0, mismatches: 0, closed: 0 };
    const known = new Map([[files[0]!, sha256Of(files[0]!)], [files[2]!, "c".repeat(64)]]);
    const r = await runMerge(manifest, { kernels, hashes: known, hashInput: async (p) => checkingHasher(p, log) });
    expect(log.opened).toEqual([files[1]]);
    expect(r.plan.models.map((m) => m.sha256)).toEqual([sha256Of(files[0]!), sha256Of(files[1]!), "c".repeat(64)]);
    expect(JSON.parse((await metadataOf(r.outputPath)).sd_merge_recipe!).tertiary_model_hash).toBe("c".repeat(64));
  });

  it("with every hash known, nothing is hashed and the output is hashed as it is written (no read-back)", async () => {
    const { files, manifest } = await setup(2);
    const log = { opened: [] as string[], chunks: 0, mismatches: 0, closed: 0 };
    const tap = digestTap();
    const phases = new Set<string>();
    const r = await runMerge(manifest, { kernels, hashes: new Map(files.map((f) => [f, sha256Of(f)])), hashInput: async (p) => checkingHasher(p, log), outputTap: tap, onProgress: (e) => phases.add(e.phase) });
    expect(log.opened).toEqual([]);
    expect(r.learnedHashes).toEqual([]);
    expect([...phases]).toEqual(["merge"]);
    expect(tap.digest()).toBe(sha256Of(r.outputPath));
  });

  it("a learned hash that a parent's ancestry also lists is one entry, the direct parent's", async () => {
    const first = await setup(1);
    const shaA = sha256Of(first.files[0]!);
    const grand = { [shaA]: { name: "as the parent remembers it", sd_merge_recipe: null }, ["1".repeat(64)]: { name: "grandparent", sd_merge_recipe: null } };
    const { dir, files } = await setup(2, { 1: { sd_merge_models: JSON.stringify(grand) } });
    expect(sha256Of(files[0]!)).toBe(shaA);
    const text = JSON.stringify({ models: [{ path: "model_a.safetensors", weight: 0.5 }, { path: "model_b.safetensors", weight: 0.5 }], output: "out.safetensors" });
    const log = { opened: [] as string[], chunks: 0, mismatches: 0, closed: 0 };
    const r = await runMerge(parseManifest(text, join(dir, "m.json")), { kernels, hashInput: async (p) => checkingHasher(p, log) });
    const ancestryText = (await metadataOf(r.outputPath)).sd_merge_models!;
    expect(ancestryText.split(shaA).length - 1).toBe(1);
    expect(JSON.parse(ancestryText)[shaA]).toMatchObject({ name: "model_a.safetensors" });
    expect(JSON.parse(ancestryText)["1".repeat(64)]).toMatchObject({ name: "grandparent" });
  });

  it("a VAE of unknown SHA-256 is hashed from its reads too", async () => {
    const { dir, files } = await setup(2);
    const vaePath = await writeTinyModel(join(dir, "vae.safetensors"), { seed: 9, layout: [{ name: "decoder.conv_in.weight", shape: [4, 4, 3, 3] }, { name: "decoder.mid_block.attentions.0.to_q.weight", shape: [4, 4] }] });
    const text = JSON.stringify({ models: [{ path: "model_a.safetensors", weight: 0.5 }, { path: "model_b.safetensors", weight: 0.5 }], vae: { path: "vae.safetensors" }, output: "out.safetensors" });
    const log = { opened: [] as string[], chunks: 0, mismatches: 0, closed: 0 };
    const hashes = new Map(files.map((f) => [f, sha256Of(f)]));
    const r = await runMerge(parseManifest(text, join(dir, "m.json")), { kernels, hashes, hashInput: async (p) => checkingHasher(p, log) });
    expect(log.opened).toEqual([vaePath]);
    expect(log.chunks).toBeGreaterThan(0);
    expect(log.mismatches).toBe(0);
    expect(JSON.parse((await metadataOf(r.outputPath)).sd_merge_recipe!).vae).toMatchObject({ name: "vae.safetensors", hash: sha256Of(vaePath) });
    expect(r.learnedHashes.map((l) => l.path)).toEqual([vaePath]);
  });

  it("the hasher is told which file the merge opened; one renamed over the path before hashing fails the merge, leaving no output or temp", async () => {
    const { dir, files, manifest } = await setup(2);
    const before = fileIdentityOf(statSync(files[1]!));
    // Another model (same size, other bytes) renamed over the second input after the merge opened it.
    await writeTinyModel(join(dir, "other.tmp"), { seed: 9 });
    const given: (FileIdentity | undefined)[] = [];
    const log = { opened: [] as string[], chunks: 0, mismatches: 0, closed: 0 };
    const run = runMerge(manifest, {
      kernels,
      hashInput: async (p, opened) => {
        given.push(opened);
        if (p === files[1]) renameSync(join(dir, "other.tmp"), p);
        // As the cache's hasher does with `opened` (tested there against a real rename).
        if (!opened || !sameFileIdentity(opened, fileIdentityOf(statSync(p)))) throw Object.assign(new Error(`${p}: replaced`), { code: "HASH_FILE_CHANGED", file: p });
        return checkingHasher(p, log);
      },
    });
    await expect(run).rejects.toMatchObject({ code: "HASH_FILE_CHANGED", file: files[1] });
    expect(given[1]).toEqual(before);
    expect(given[0]).toMatchObject({ ino: statSync(files[0]!).ino, size: statSync(files[0]!).size });
    expect(readdirSync(dir).sort()).toEqual(["m.json", "model_a.safetensors", "model_b.safetensors"]);
    expect(log.closed).toBe(1);
  });

  for (const phase of ["merge", "hash inputs"]) {
    it(`an abort during the ${phase} phase leaves no output and no temp file, and closes the hashers`, async () => {
      const { dir, manifest } = await setup(2);
      const log = { opened: [] as string[], chunks: 0, mismatches: 0, closed: 0 };
      const controller = new AbortController();
      const run = runMerge(manifest, {
        kernels,
        hashInput: async (p) => checkingHasher(p, log),
        signal: controller.signal,
        onProgress: (e) => {
          if (e.phase === phase && e.bytesDone > 0) controller.abort();
        },
      });
      await expect(run).rejects.toMatchObject({ code: expect.stringMatching(/ABORTED/) });
      expect(readdirSync(dir).sort()).toEqual(["m.json", "model_a.safetensors", "model_b.safetensors"]);
      expect(existsSync(join(dir, "out.safetensors"))).toBe(false);
      expect(log.closed).toBe(2);
    });
  }
});
