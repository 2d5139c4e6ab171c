import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSafetensors } from "@stmerge/core-tensors";
import { TINY_SD1_LAYOUT, writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

let dir: string;
// With an EMA scalar, which the merge prunes.
const LAYOUT = [...TINY_SD1_LAYOUT, ["model_ema.decay", []] as const];
const writeModel = (path: string, seed: number) => writeTinySd1Model(path, { seed, layout: LAYOUT });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-cli-merge-"));
  mkdirSync(join(dir, "models"));
  for (const [i, name] of ["alpha_mix", "beta-mix", "gamma mix"].entries()) await writeModel(join(dir, "models", `${name}.safetensors`), i + 1);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const env = () => ({ STMERGE_CACHE: join(dir, "cache.json"), STMERGE_NO_BANNER: "1" });

describe("stmerge scan → merge → extract-vae", () => {
  it("scan writes a manifest relative to itself, then refuses to overwrite it", async () => {
    const io = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["scan", "models", "-o", "merge.json", "--compute-hashes"], io)).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, "merge.json"), "utf8"));
    expect(manifest.models.map((m: { path: string }) => m.path)).toEqual(["models/alpha_mix.safetensors", "models/beta-mix.safetensors", "models/gamma mix.safetensors"]);
    expect(manifest.models[0]).toMatchObject({ architecture: "SD1.5", index: 0, precision_detected: "fp16", sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(manifest.output.path).toBe("SD1.5_alphamix_betamix_gammamix_merged.safetensors");
    expect(io.out()).toMatch(/^│ manifest +written to .*merge\.json +│$/m);
    expect(io.out()).toMatch(/^│ next +stmerge merge --manifest .*merge\.json --dry-run \(review the manifest first\) +│$/m);
    expect(io.out()).toMatch(/^│ hashes +3 of 3 recorded +│$/m);
    const again = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["scan", "models", "-o", "merge.json"], again)).toBe(1);
    expect(again.err()).toContain("OUTPUT_EXISTS");
  });

  it("scan --compute-hashes --no-cache hashes without a cache, --no-equal-weights sets 1.0", async () => {
    const io = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["scan", "models", "-o", "nocache.json", "--compute-hashes", "--no-cache", "--no-equal-weights", "--json"], io)).toBe(0);
    const manifest = JSON.parse(readFileSync(join(dir, "nocache.json"), "utf8"));
    expect(manifest.models.map((m: { weight: number }) => m.weight)).toEqual([1, 1, 1]);
    expect(manifest.models[2]).toMatchObject({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), crc32: expect.stringMatching(/^[0-9A-F]{8}$/) });
    expect(JSON.parse(io.out()).detection[0]).toMatchObject({ architecture: "sd1", layout: "ldm" });
  });

  it("merge --dry-run prints the plan and writes nothing", async () => {
    const io = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "--manifest", "merge.json", "--dry-run"], io)).toBe(0);
    expect(io.out()).toMatch(/plan: weighted_sum of 3 SD1\.5 models/);
    expect(io.out()).toMatch(/IN00/);
    expect(io.out()).toMatch(/peak memory/);
    expect(existsSync(join(dir, "SD1.5_alphamix_betamix_gammamix_merged.safetensors"))).toBe(false);
    const json = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "-m", "merge.json", "--dry-run", "--json"], json)).toBe(0);
    expect(JSON.parse(json.out())).toMatchObject({ dryRun: true, method: "weighted_sum", tensors: 5, pruned: 1 });
    // The manifest may also be given as the argument; twice is a usage error.
    const positional = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "merge.json", "--dry-run", "--json"], positional)).toBe(0);
    expect(JSON.parse(positional.out())).toMatchObject({ dryRun: true, method: "weighted_sum", tensors: 5, pruned: 1 });
    const twice = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "merge.json", "-m", "merge.json", "--dry-run"], twice)).toBe(2);
    expect(twice.err()).toMatch(/give the manifest once/);
  });

  it("merge writes the output with recipe metadata, and refuses to overwrite it", async () => {
    const io = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "--manifest", "merge.json", "--device", "cpu", "--json"], io)).toBe(0);
    const result = JSON.parse(io.out());
    expect(result).toMatchObject({ command: "merge", dryRun: false, method: "weighted_sum", output: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) } });
    // Hashed while written: the value is the file's own SHA-256 and size.
    expect(result.output.sha256).toBe(createHash("sha256").update(readFileSync(result.output.path)).digest("hex"));
    expect(result.output.sizeBytes).toBe(statSync(result.output.path).size);
    const s = await openSafetensors(result.output.path);
    const recipe = JSON.parse(s.metadata.sd_merge_recipe!);
    expect(recipe.models).toHaveLength(3);
    expect(recipe.models[0].hash).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.keys(JSON.parse(s.metadata.sd_merge_models!))).toHaveLength(3);
    await s.close();
    const again = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "--manifest", "merge.json", "--device", "cpu"], again)).toBe(1);
    expect(again.err()).toContain("MERGE_OUTPUT_EXISTS");
  });

  it("merge reports validation errors with their code and exit 1, and bad flags with exit 2", async () => {
    const io = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "-m", "merge.json", "--merge-method", "add_difference", "--dry-run"], io)).toBe(0);
    const two = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "-m", "merge.json", "--merge-method", "slerp", "--dry-run"], two)).toBe(1);
    expect(two.err()).toContain("MERGE_ARITY");
    const bad = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "-m", "merge.json", "--precision", "fp8"], bad)).toBe(2);
    const missing = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "-m", "nope.json"], missing)).toBe(1);
    expect(missing.err()).toContain("MANIFEST_NOT_FOUND");
  });

  it("merge --plugin loads a third-party method from a module path", async () => {
    // A plugin written as plain JavaScript, as a user would ship it (a zod-like params schema).
    writeFileSync(
      join(dir, "max-plugin.mjs"),
      `const params = { safeParse: (v) => ({ success: true, data: v ?? {} }), parse: (v) => v ?? {} };
export const mergeMethods = [{ name: "elementwise_max", description: "max", params, arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true,
  async merge(ctx, tensors) { for (let i = 0; i < ctx.out.length; i++) ctx.out[i] = Math.max(...tensors.map((t) => t[i])); return ctx.out; } }];
`,
    );
    const io = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["merge", "-m", "merge.json", "--plugin", "./max-plugin.mjs", "--merge-method", "elementwise_max", "-o", "max.safetensors", "--no-cache", "--json"], io)).toBe(0);
    expect(JSON.parse(io.out())).toMatchObject({ method: "elementwise_max" });
    const s = await openSafetensors(join(dir, "max.safetensors"));
    expect(JSON.parse(s.metadata.sd_merge_recipe!).algorithm).toBe("elementwise_max");
    await s.close();
  });

  it("extract-vae writes the VAE beside the model", async () => {
    const io = memoryIo({ env: env(), cwd: dir });
    expect(await runCli(["extract-vae", "models/alpha_mix.safetensors"], io)).toBe(0);
    const s = await openSafetensors(join(dir, "models", "alpha_mix.vae.safetensors"));
    expect(s.descriptors.map((d) => d.name)).toEqual(["decoder.conv_in.weight"]);
    await s.close();
    expect(io.out()).toMatch(/^╭─ ✔ extracted VAE ─+╮$/m);
    expect(io.out()).toMatch(/^│ output +.*models\/alpha_mix\.vae\.safetensors +│$/m);
    expect(io.out()).toMatch(/^│ from +.*models\/alpha_mix\.safetensors +│$/m);
    expect(io.out()).toMatch(/^│ tensors +1 \(the checkpoint's VAE keys, prefix removed\) +│$/m);
    expect(io.out()).toMatch(/^│ next +stmerge inspect alpha_mix\.vae\.safetensors +│$/m);
  });
});
