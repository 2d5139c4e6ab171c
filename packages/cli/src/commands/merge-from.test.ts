import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSafetensors } from "@stmerge/core-tensors";
import { TINY_SD1_LAYOUT, writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JSON_DOCUMENTS, nonCamelKeys } from "../../test/json-document-schemas.js";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

let dir: string;
const NAMES = ["alpha_mix", "beta-mix", "gamma mix"];

const writeModel = (path: string, seed: number, layout = TINY_SD1_LAYOUT) => writeTinySd1Model(path, { seed, layout });

/** Every tensor of a file as name → dtype, shape and raw bytes (hex). */
async function tensorsOf(path: string): Promise<Record<string, string>> {
  const s = await openSafetensors(path);
  try {
    const out: Record<string, string> = {};
    for (const d of s.descriptors) out[d.name] = `${d.dtype} ${d.shape.join("x")} ${Buffer.from(await s.read(d.name)).toString("hex")}`;
    return out;
  } finally {
    await s.close();
  }
}

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const env = () => ({ STMERGE_CACHE: join(dir, "cache.json"), STMERGE_NO_BANNER: "1" });
const cli = async (argv: string[]) => {
  const io = memoryIo({ env: env(), cwd: dir });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
};
const cachedPaths = () => (existsSync(join(dir, "cache.json")) ? Object.keys(JSON.parse(readFileSync(join(dir, "cache.json"), "utf8")).paths as Record<string, unknown>) : []);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-cli-from-"));
  mkdirSync(join(dir, "models"));
  for (const [i, name] of NAMES.entries()) await writeModel(join(dir, "models", `${name}.safetensors`), i + 1);
  // The first merge: hashed by scan without the cache, so the cache knows none of the inputs yet.
  expect((await cli(["scan", "models", "-o", "merge.json", "--compute-hashes", "--no-cache"])).code).toBe(0);
  const manifest = JSON.parse(readFileSync(join(dir, "merge.json"), "utf8"));
  manifest.merge_method = "ties";
  manifest.merge_params = { density: 0.5 };
  manifest.block_params = { lambda: { IN00: 0.6 } };
  manifest.models.forEach((m: { weight: number }, i: number) => (m.weight = [1, 0.7, 0.3][i]!));
  manifest.output = { path: "first.safetensors" };
  writeFileSync(join(dir, "merge.json"), JSON.stringify(manifest));
  const first = await cli(["merge", "-m", "merge.json", "--device", "cpu", "--no-cache"]);
  expect(first.code, first.err).toBe(0);
  // The inputs move to another folder under other names; a decoy of the same size and one of another size sit beside them.
  mkdirSync(join(dir, "stash", "sub"), { recursive: true });
  NAMES.forEach((n, i) => copyFileSync(join(dir, "models", `${n}.safetensors`), join(dir, "stash", "sub", `moved-${i}.safetensors`)));
  await writeModel(join(dir, "stash", "decoy-same-size.safetensors"), 42);
  await writeModel(join(dir, "stash", "other-size.safetensors"), 43, TINY_SD1_LAYOUT.slice(0, 2));
  rmSync(join(dir, "models"), { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stmerge merge --from", () => {
  it("--dry-run finds the inputs with --search, shows which file serves which hash, and writes nothing", async () => {
    const r = await cli(["merge", "--from", "first.safetensors", "--search", "stash", "--dry-run", "--no-cache"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/recipe: ties of 3 models from .*first\.safetensors/);
    expect(r.out).toMatch(/#1 {2}[0-9a-f]{10} {2}beta-mix\.safetensors ← .*moved-1\.safetensors \(search\)/);
    expect(r.out).toMatch(/plan: ties of 3 SD1\.5 models → .*first\.remerged\.safetensors/);
    expect(readdirSync(dir).filter((f) => f.endsWith(".safetensors"))).toEqual(["first.safetensors"]);
    expect(cachedPaths()).toEqual([]);
  });

  it("re-merges from the recipe: tensors byte-identical, inputs hashed by size only and recorded in the cache, --json valid", async () => {
    const r = await cli(["merge", "--from", "first.safetensors", "--search", "stash", "--device", "cpu", "--json"]);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    const parsed = JSON_DOCUMENTS.merge.safeParse(doc);
    expect(parsed.success, parsed.error?.message).toBe(true);
    expect(nonCamelKeys(doc)).toEqual([]);
    expect(doc.output.path).toBe(join(dir, "first.remerged.safetensors"));
    expect(doc.from.inputs.map((i: { path: string; foundBy: string }) => [i.path, i.foundBy])).toEqual(NAMES.map((_, i) => [join(dir, "stash", "sub", `moved-${i}.safetensors`), "search"]));
    expect(doc.from.inputs.map((i: { sha256: string }) => i.sha256)).toEqual(NAMES.map((_, i) => sha(join(dir, "stash", "sub", `moved-${i}.safetensors`))));
    expect(await tensorsOf(join(dir, "first.remerged.safetensors"))).toEqual(await tensorsOf(join(dir, "first.safetensors")));
    // Hashed: the same-size files only (never the file of another size); recorded, with the output.
    const cached = cachedPaths();
    expect(cached).toContain(join(dir, "stash", "sub", "moved-2.safetensors"));
    expect(cached).not.toContain(join(dir, "stash", "other-size.safetensors"));
    expect(cached).toContain(join(dir, "first.remerged.safetensors"));
    // The default output exists now: never replaced without --overwrite; never the source, even with it.
    const again = await cli(["merge", "--from", "first.safetensors", "--device", "cpu"]);
    expect(again.code).toBe(1);
    expect(again.err).toContain("MERGE_OUTPUT_EXISTS");
    const self = await cli(["merge", "--from", "first.safetensors", "-o", "first.safetensors", "--overwrite", "--device", "cpu"]);
    expect(self.code).toBe(1);
    expect(self.err).toMatch(/first\.safetensors: the output would replace the merged file being reproduced; name another with -o/);
  });

  it("finds the inputs through the cache without --search", async () => {
    const r = await cli(["merge", "--from", "first.safetensors", "-o", "via-cache.safetensors", "--device", "cpu", "--json"]);
    expect(r.code, r.err).toBe(0);
    const doc = JSON.parse(r.out);
    expect(doc.from.inputs.map((i: { foundBy: string }) => i.foundBy)).toEqual(["cache", "cache", "cache"]);
    expect(doc.from.hashedWhileSearching).toBe(0);
    expect(await tensorsOf(join(dir, "via-cache.safetensors"))).toEqual(await tensorsOf(join(dir, "first.safetensors")));
  });

  it("names a missing input by SHA-256 and recorded name, and where it looked", async () => {
    const gone = join(dir, "stash", "sub", "moved-1.safetensors");
    const hash = sha(gone);
    copyFileSync(gone, join(dir, "kept.bin"));
    rmSync(gone);
    try {
      const r = await cli(["merge", "--from", "first.safetensors", "--search", "stash", "-o", "never.safetensors", "--device", "cpu"]);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`1 input(s) of the recipe not found: model 1 "beta-mix.safetensors" (sha256 ${hash}; 1 file(s) of its size, ${statSync(join(dir, "kept.bin")).size} bytes, searched); looked in the metadata cache; in ${join(dir, "stash")}`);
      expect(r.err.trim().split("\n")).toHaveLength(1);
      expect(existsSync(join(dir, "never.safetensors"))).toBe(false);
    } finally {
      copyFileSync(join(dir, "kept.bin"), gone);
    }
  });

  it("refuses a file without a stmerge recipe in one line naming it", async () => {
    const r = await cli(["merge", "--from", "stash/decoy-same-size.safetensors"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/decoy-same-size\.safetensors: no stmerge recipe in its metadata .* \[RECIPE_MISSING\]\n$/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("refuses a recipe whose method comes from a plugin until --plugin names it", async () => {
    writeFileSync(
      join(dir, "max-plugin.mjs"),
      `const params = { safeParse: (v) => ({ success: true, data: v ?? {} }), parse: (v) => v ?? {} };
export const mergeMethods = [{ name: "elementwise_max", description: "max", params, arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true,
  async merge(ctx, tensors) { for (let i = 0; i < ctx.out.length; i++) ctx.out[i] = Math.max(...tensors.map((t) => t[i])); return ctx.out; } }];
`,
    );
    const manifest = JSON.parse(readFileSync(join(dir, "merge.json"), "utf8"));
    manifest.models = manifest.models.map((m: { path: string }, i: number) => ({ ...m, path: `stash/sub/moved-${i}.safetensors` })).slice(0, 1);
    writeFileSync(join(dir, "max.json"), JSON.stringify({ models: manifest.models, output: { path: "max.safetensors" } }));
    // A one-model merge of a file the cache knows (hashed by the search above).
    expect((await cli(["merge", "-m", "max.json", "--plugin", "./max-plugin.mjs", "--merge-method", "elementwise_max", "--device", "cpu"])).code).toBe(0);
    const refused = await cli(["merge", "--from", "max.safetensors", "--dry-run"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/max\.safetensors: its recipe uses merge method "elementwise_max", which is not built in; .*run again with --plugin <module> \[RECIPE_NEEDS_PLUGIN\]/);
    const ok = await cli(["merge", "--from", "max.safetensors", "--plugin", "./max-plugin.mjs", "--device", "cpu"]);
    expect(ok.code, ok.err).toBe(0);
    expect(await tensorsOf(join(dir, "max.remerged.safetensors"))).toEqual(await tensorsOf(join(dir, "max.safetensors")));
  });

  it("takes --manifest or --from, not both, and --search only with --from", async () => {
    expect((await cli(["merge", "-m", "merge.json", "--from", "first.safetensors"])).code).toBe(2);
    expect((await cli(["merge"])).code).toBe(2);
    const r = await cli(["merge", "-m", "merge.json", "--search", "stash"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("--search goes with --from");
  });
});
