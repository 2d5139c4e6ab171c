import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSafetensors } from "@stmerge/core-tensors";
import { type TinyTensor, writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JSON_DOCUMENTS } from "../../test/json-document-schemas.js";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

let dir: string;
const LAYOUT: TinyTensor[] = [
  ["cond_stage_model.transformer.text_model.final_layer_norm.weight", [8]],
  ["first_stage_model.decoder.conv_in.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.0.0.weight", [64, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [32, 768]],
  ["model.diffusion_model.out.2.bias", [4]],
  ["model_ema.decay", [1]],
];

const writeModel = (path: string, seed: number, layout: readonly TinyTensor[]) => writeTinySd1Model(path, { seed, layout, metadata: { note: `model ${seed}` } });

// The reference: node:crypto over each whole file read at once.
const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const cli = async (argv: string[], cache = join(dir, "cache.json")) => {
  const io = memoryIo({ env: { STMERGE_CACHE: cache, STMERGE_NO_BANNER: "1" }, cwd: dir });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
};
const models = ["a", "b", "c"].map((n) => `models/${n}.safetensors`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-cli-input-hashes-"));
  mkdirSync(join(dir, "models"));
  // Model b lies in the reverse order of a (the merge reads it out of file order) and has a key a lacks
  // (never read by the merge); a's EMA key is pruned (never read either).
  await writeModel(join(dir, models[0]!), 1, LAYOUT);
  await writeModel(join(dir, models[1]!), 2, [...LAYOUT.slice(0, 5).reverse(), ["model.diffusion_model.extra.weight", [16, 16]]]);
  await writeModel(join(dir, models[2]!), 3, LAYOUT.slice(0, 5));
  // A manifest with no hashes at all, as a user writes it.
  writeFileSync(join(dir, "merge.json"), JSON.stringify({ models: models.map((path, i) => ({ path, weight: [0.5, 0.3, 0.2][i] })), output: "first.safetensors" }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("merge hashes inputs of unknown SHA-256 in its own pass", () => {
  it("without a cache: sd_merge_models is keyed by the inputs' true SHA-256, shown in --json and the summary", async () => {
    const r = await cli(["merge", "-m", "merge.json", "--device", "cpu", "--no-cache", "--json"]);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    expect(JSON_DOCUMENTS.merge.safeParse(doc).success).toBe(true);
    const truth = models.map((m) => sha(join(dir, m)));
    expect(doc.models.map((m: { sha256: string }) => m.sha256)).toEqual(truth);
    expect(doc.models.map((m: { sha256From: string }) => m.sha256From)).toEqual(["merge", "merge", "merge"]);
    expect(doc.hashedDuringMerge.map((h: { sha256: string }) => h.sha256).sort()).toEqual([...truth].sort());
    // Model b's own header, its key a lacks and its reversed order are read by the hasher itself.
    const b = doc.hashedDuringMerge.find((h: { path: string }) => h.path.endsWith("b.safetensors"));
    expect(b.bytesReadAgain).toBeGreaterThan(16 * 16 * 2);
    const out = join(dir, "first.safetensors");
    // The output's SHA-256 (taken by reading it back after the header was rewritten) is its true one.
    expect(doc.output.sha256).toBe(sha(out));
    const s = await openSafetensors(out);
    const metadata = { ...s.metadata };
    await s.close();
    expect(Object.keys(JSON.parse(metadata.sd_merge_models!)).sort()).toEqual([...truth].sort());
    expect(JSON.parse(metadata.sd_merge_recipe!).models.map((m: { hash: string }) => m.hash)).toEqual(truth);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    const text = await cli(["merge", "-m", "merge.json", "--device", "cpu", "--no-cache", "-o", "again.safetensors"]);
    expect(text.code, text.err).toBe(0);
    expect(text.out).toContain(`input 1`);
    expect(text.out).toContain(`${truth[1]!.slice(0, 12)}`);
    expect(text.out).toContain("hashed while merging");
    expect(text.out).not.toMatch(/compute-hashes/);
  });

  it("with the cache: records the inputs and the output under their true SHA-256; the next merge takes the fast path", async () => {
    const r = await cli(["merge", "-m", "merge.json", "--device", "cpu", "-o", "cached.safetensors", "--json"]);
    expect(r.code, r.err).toBe(0);
    const cache = JSON.parse(readFileSync(join(dir, "cache.json"), "utf8")) as { paths: Record<string, { sha256: string }> };
    for (const m of models) expect(cache.paths[join(dir, m)]?.sha256).toBe(sha(join(dir, m)));
    expect(cache.paths[join(dir, "cached.safetensors")]?.sha256).toBe(sha(join(dir, "cached.safetensors")));

    const again = await cli(["merge", "-m", "merge.json", "--device", "cpu", "-o", "cached2.safetensors", "--json"]);
    expect(again.code, again.err).toBe(0);
    const doc = JSON.parse(again.out);
    expect(doc.hashedDuringMerge).toEqual([]);
    expect(doc.models.map((m: { sha256From: string }) => m.sha256From)).toEqual(["cache", "cache", "cache"]);
    expect(doc.output.sha256).toBe(sha(join(dir, "cached2.safetensors")));
  });

  it("checkpoint inputs (no file offsets to follow) are hashed whole alongside the merge", async () => {
    const fixtures = join(import.meta.dirname, "../../../safe-pickle/test/fixtures");
    mkdirSync(join(dir, "ckpt"));
    copyFileSync(join(fixtures, "sd_lightning.ckpt"), join(dir, "ckpt", "a.ckpt"));
    copyFileSync(join(fixtures, "sd_lightning_legacy.ckpt"), join(dir, "ckpt", "b.ckpt"));
    writeFileSync(join(dir, "ckpt.json"), JSON.stringify({ models: [{ path: "ckpt/a.ckpt", weight: 0.5 }, { path: "ckpt/b.ckpt", weight: 0.5 }], output: "from-ckpt.safetensors" }));
    const r = await cli(["merge", "-m", "ckpt.json", "--device", "cpu", "--no-cache", "--json"]);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    const paths = ["a", "b"].map((n) => join(dir, "ckpt", `${n}.ckpt`));
    expect(doc.models.map((m: { sha256: string }) => m.sha256)).toEqual(paths.map(sha));
    expect(doc.hashedDuringMerge.map((h: { bytesReadAgain: number }) => h.bytesReadAgain)).toEqual(paths.map((p) => readFileSync(p).byteLength));
    // Read alongside the merge (their reads are decoded storages, nothing to follow), not after it.
    expect(doc.timings.phases.map((p: { phase: string }) => p.phase)).toContain("hash checkpoints");
    expect(doc.timings.phases.map((p: { phase: string }) => p.phase)).not.toContain("hash inputs");
  });

  it("merge --from finds the direct parents of a merge whose inputs nobody hashed before", async () => {
    const r = await cli(["merge", "--from", "first.safetensors", "--search", "models", "--device", "cpu", "--no-cache", "--json"]);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.from.inputs.map((i: { path: string }) => i.path)).toEqual(models.map((m) => join(dir, m)));
    expect(existsSync(join(dir, "first.remerged.safetensors"))).toBe(true);
  });
});
