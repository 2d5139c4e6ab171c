import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadTfjsNodeGpu } from "@stmerge/core-tensors";
import { TINY_SD1_LAYOUT, type TinyTensor, writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

// What users hand `merge` by accident, and the manifests other tools wrote: refused with one line
// naming the file, before any tensor is read, and nothing written.
let dir: string;
const SD1 = TINY_SD1_LAYOUT;
const LORA: [string, number[]][] = [
  ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha", []],
  ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", [4, 768]],
  ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", [2, 4]],
];
const VAE: [string, number[]][] = [
  ["decoder.conv_in.weight", [4, 4, 3, 3]],
  ["encoder.conv_in.weight", [4, 3, 3, 3]],
];

const writeModel = (path: string, layout: readonly TinyTensor[], seed: number) => writeTinySd1Model(path, { seed, layout });

const env = () => ({ STMERGE_CACHE: join(dir, "cache.json"), STMERGE_NO_BANNER: "1" });
const files = () => readdirSync(dir, { recursive: true }).map(String).sort();
function manifest(name: string, json: Record<string, unknown>): string {
  writeFileSync(join(dir, name), JSON.stringify(json, null, 2));
  return name;
}
const models = (...paths: string[]) => paths.map((path, index) => ({ path, weight: 1 / paths.length, architecture: "SD1.5", index }));
async function run(argv: string[]) {
  const io = memoryIo({ env: env(), cwd: dir });
  const code = await runCli(argv, io);
  return { code, out: io.out(), err: io.err() };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-cli-merge-inputs-"));
  mkdirSync(join(dir, "models"));
  await writeModel(join(dir, "models", "a.safetensors"), SD1, 1);
  await writeModel(join(dir, "models", "b.safetensors"), SD1, 2);
  await writeModel(join(dir, "models", "style.lora.safetensors"), LORA, 3);
  await writeModel(join(dir, "models", "vae.safetensors"), VAE, 4);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("merge with the manifest's loras", () => {
  it("--dry-run lists each LoRA with the tensors it changes and writes nothing", async () => {
    const before = files();
    const m = manifest("with-lora.json", { models: models("models/a.safetensors", "models/b.safetensors"), loras: [{ path: "models/style.lora.safetensors", strength: 0.5 }], output: { path: "out.safetensors" } });
    const r = await run(["merge", "-m", m, "--dry-run", "--no-cache"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ {2}lora {8}style\.lora\.safetensors × 0\.5 → 1 tensor changed$/m);
    expect(files()).toEqual([...before, "with-lora.json"].sort());
  });
});

describe("merge refuses inputs that are not full checkpoints", () => {
  it("SD1 + LoRA: exit 1, one line naming the LoRA and `stmerge lora bake`, no output", async () => {
    const before = files();
    const m = manifest("lora.json", { models: models("models/a.safetensors", "models/style.lora.safetensors"), output: { path: "out.safetensors" } });
    const r = await run(["merge", "-m", m, "--device", "cpu", "--no-cache"]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toEqual([expect.stringMatching(/^stmerge: .*style\.lora\.safetensors: is a LoRA, not a full checkpoint; .*stmerge lora bake.*\[MERGE_NOT_A_CHECKPOINT\]$/)]);
    expect(r.out).toBe("");
    expect(files()).toEqual([...before, "lora.json"].sort());
  });

  it("a VAE listed as a model is refused, also in --dry-run", async () => {
    const m = manifest("vae-model.json", { models: models("models/a.safetensors", "models/vae.safetensors"), output: { path: "out.safetensors" } });
    const r = await run(["merge", "-m", m, "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/vae\.safetensors: is a standalone VAE, not a full checkpoint; bake a VAE in with the manifest's `vae` field/);
    expect(r.out).not.toContain("plan:");
  });
});

describe("merge refuses parameters and fields it does not know", () => {
  it("a misspelt merge_params key: exit 1, the key, a suggestion and the method's parameters; nothing written", async () => {
    const before = files();
    const m = manifest("alpah.json", { models: models("models/a.safetensors", "models/b.safetensors", "models/a.safetensors"), merge_method: "add_difference", merge_params: { alpah: 0.3 }, output: { path: "out.safetensors" } });
    const r = await run(["merge", "-m", m, "--device", "cpu", "--no-cache"]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toEqual(['stmerge: merge_params.alpah: add_difference has no parameter "alpah" (did you mean "alpha"?); its parameters: alpha [MERGE_UNKNOWN_PARAM]']);
    expect(files()).toEqual([...before, "alpah.json"].sort());
  });

  it("a parameter the method does not take is refused too (alpha for weighted_sum), also in --dry-run", async () => {
    const m = manifest("ws-alpha.json", { models: models("models/a.safetensors", "models/b.safetensors"), merge_params: { alpha: 0.3 }, output: { path: "out.safetensors" } });
    const r = await run(["merge", "-m", m, "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('merge_params.alpha: weighted_sum has no parameter "alpha"; its parameters: normalize');
  });

  it("a misspelt manifest field names the manifest, the field and what it likely meant", async () => {
    const m = manifest("field.json", { models: models("models/a.safetensors", "models/b.safetensors"), merge_methd: "ties" });
    const r = await run(["merge", "-m", m, "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toMatch(/field\.json: merge_methd: unknown field \(did you mean "merge_method"\?\).*\[MANIFEST_INVALID\]$/m);
  });

  it("manifests of the Python tool 0.6 (every field it writes) still merge", async () => {
    const m = manifest("python.json", {
      models: models("models/a.safetensors", "models/b.safetensors").map((e) => ({ ...e, precision_detected: "fp16", crc32: "0123ABCD" })),
      vae: null,
      output: { path: "py-out.safetensors", sha256: "d".repeat(64), precision_written: "fp16" },
      output_precision: "match",
      device: "cpu",
      prune: true,
      overwrite: false,
      merge_method: "weighted_sum",
      consensus_exponent: 4,
    });
    const r = await run(["merge", "-m", m, "--dry-run", "--json"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ dryRun: true, method: "weighted_sum" });
  });
});

describe("merge says what it found", () => {
  it("warns when the manifest's architecture disagrees with the tensors, on stderr and in --json warnings", async () => {
    const m = manifest("declared.json", { models: models("models/a.safetensors", "models/b.safetensors").map((e, i) => (i === 1 ? { ...e, architecture: "Illustrious" } : e)), output: { path: "out.safetensors" } });
    const r = await run(["merge", "-m", m, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^warning: .*models\/b\.safetensors: the manifest says Illustrious, but its tensors are SD1\.5 \(attn2\.to_k context 768\); merging it as SD1\.5$/m);
    const json = await run(["merge", "-m", m, "--dry-run", "--json"]);
    expect(JSON.parse(json.out).warnings).toEqual([expect.stringContaining("the manifest says Illustrious")]);
  });

  it("the plan shows weight columns only for methods that use weights", async () => {
    const ws = await run(["merge", "-m", manifest("ws.json", { models: models("models/a.safetensors", "models/b.safetensors"), output: { path: "out.safetensors" } }), "--dry-run"]);
    expect(ws.out).toMatch(/\bweight\b/);
    expect(ws.out).toMatch(/\bw0\s+w1\b/);
    const ad = await run(["merge", "-m", manifest("ad.json", { models: models("models/a.safetensors", "models/b.safetensors", "models/a.safetensors"), merge_method: "add_difference", output: { path: "out.safetensors" } }), "--dry-run"]);
    expect(ad.code).toBe(0);
    expect(ad.out).toMatch(/plan: add_difference/);
    expect(ad.out).not.toMatch(/\bweight\b|\bw0\b/);
    expect(ad.out).toMatch(/\balpha\b/);
  });

  it("the summary of a merge names the baked VAE", async () => {
    await writeModel(join(dir, "models", "dec.vae.safetensors"), [["decoder.conv_in.weight", [4, 4, 3, 3]]], 9);
    const m = manifest("baked.json", { models: models("models/a.safetensors", "models/b.safetensors"), vae: { path: "models/dec.vae.safetensors" }, output: { path: "baked.safetensors" } });
    const r = await run(["merge", "-m", m, "--device", "cpu", "--no-cache"]);
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^(│|\|) vae +dec\.vae\.safetensors baked in \(1 tensor\)/m);
  });
});

describe("manifests written on Windows", () => {
  it("backslash paths relative to the current folder load, and the fallback warning is in the --json warnings", async () => {
    mkdirSync(join(dir, "win", "out"), { recursive: true });
    writeFileSync(join(dir, "win", "m.json"), JSON.stringify({ models: models("models\\a.safetensors", "models\\b.safetensors"), output: { path: "out\\merged.safetensors" } }));
    const r = await run(["merge", "-m", join("win", "m.json"), "--dry-run", "--json"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.out);
    expect(result.models.map((m: { path: string }) => m.path)).toEqual([join(dir, "models", "a.safetensors"), join(dir, "models", "b.safetensors")]);
    expect(result.output.path).toBe(join(dir, "win", "out", "merged.safetensors"));
    expect(result.warnings).toEqual([expect.stringContaining("models/a.safetensors: not found next to the manifest"), expect.stringContaining("models/b.safetensors: not found next to the manifest")]);
    expect(r.err).toContain('"type":"warning"');
  });
});

describe("scan after a merge", () => {
  it("leaves out its own earlier output, hints at .ckpt files, names the output from the models included", async () => {
    mkdirSync(join(dir, "scanme"));
    await writeModel(join(dir, "scanme", "kiwi.safetensors"), SD1, 5);
    await writeModel(join(dir, "scanme", "lime.safetensors"), SD1, 6);
    writeFileSync(join(dir, "scanme", "old.ckpt"), "PK");
    const first = await run(["scan", "scanme", "-o", "scan1.json", "--no-cache"]);
    expect(first.code).toBe(0);
    const out = JSON.parse(readFileSync(join(dir, "scan1.json"), "utf8")).output.path;
    expect(out).toBe("SD1.5_kiwi_lime_merged.safetensors");
    expect(first.err).toContain("warning: 1 legacy checkpoint not scanned (old.ckpt); convert it first: stmerge convert");
    const merged = await run(["merge", "-m", "scan1.json", "-o", join("scanme", "AA_mix.safetensors"), "--device", "cpu", "--no-cache"]);
    expect(merged.code).toBe(0);

    const again = await run(["scan", "scanme", "-o", "scan2.json", "--no-cache", "--json"]);
    expect(again.code).toBe(0);
    const result = JSON.parse(again.out);
    expect(result.manifest.document.models.map((m: { path: string }) => m.path)).toEqual(["scanme/kiwi.safetensors", "scanme/lime.safetensors"]);
    expect(result.mergeOutputs).toEqual([join(dir, "scanme", "AA_mix.safetensors")]);
    expect(result.warnings).toContain("left out 1 earlier merge output (AA_mix.safetensors); --include-merged scans them");
    const all = await run(["scan", "scanme", "-o", "scan3.json", "--no-cache", "--include-merged", "--json"]);
    expect(JSON.parse(all.out).manifest.document.models[0].path).toBe("scanme/AA_mix.safetensors");
  });
});

// Whether this machine has a working GPU backend (the GPU-less branch is what most machines see).
const gpuLoads = await loadTfjsNodeGpu().then(
  () => true,
  () => false,
);

describe("GPU selection is honest", () => {
  it.skipIf(gpuLoads)("--device gpu, --device cuda and a manifest's \"device\": \"cuda\" fail alike: one line, what is missing, how to get it, nothing written", async () => {
    const before = files();
    const m = manifest("cuda.json", { models: models("models/a.safetensors", "models/b.safetensors"), device: "cuda", output: { path: "gpu-out.safetensors" } });
    const runs = [await run(["merge", "-m", m, "--device", "gpu", "--no-cache"]), await run(["merge", "-m", m, "--device", "cuda", "--no-cache"]), await run(["merge", "-m", m, "--no-cache"])];
    for (const r of runs) {
      expect(r.code).toBe(1);
      const lines = r.err.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^stmerge: (--device (gpu|cuda)|the manifest's "device": "cuda"): GPU requested, but no GPU backend loads \(tfjs-node-gpu (not installed|native binding missing|did not load)\); .*(install|pnpm rebuild|--debug).*, or use --device cpu$/);
      expect(lines[0]!.length).toBeLessThan(320);
    }
    expect(files()).toEqual([...before, "cuda.json"].sort());
  });

  it.skipIf(gpuLoads)("--device auto says in a few words on the banner that it computes on the CPU and why", async () => {
    const io = memoryIo({ env: { STMERGE_CACHE: join(dir, "cache.json") }, cwd: dir });
    const m = manifest("auto.json", { models: models("models/a.safetensors", "models/b.safetensors"), device: "auto", output: { path: "auto-out.safetensors" } });
    expect(await runCli(["merge", "-m", m, "--no-cache"], io)).toBe(0);
    const banner = io.err().split("\n").find((l) => l.includes("compute"))!;
    // Under vitest the package resolves but tfjs-core fails inside vite's module loader, which
    // the CLI can only call "did not load"; the bundled CLI says "not installed" or "binding missing".
    expect(banner).toMatch(/compute cpu \(\d+ worker threads?\); no GPU \(tfjs-node-gpu (not installed|native binding missing|did not load)\)/);
    expect(banner).not.toMatch(/\/|…/);
  });

  it("an unknown device is a usage error naming the flag, or the manifest", async () => {
    const m = manifest("mps.json", { models: models("models/a.safetensors", "models/b.safetensors"), device: "mps" });
    expect((await run(["merge", "-m", m, "--device", "tpu"])).err).toContain('--device must be auto, cpu, gpu or cuda, got "tpu"');
    const r = await run(["merge", "-m", m]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('mps.json: device: "mps" is not auto, cpu, gpu or cuda');
  });
});

describe("flags a method does not take", () => {
  it("--normalize with a method that has no weights to rescale is named as the flag", async () => {
    const m = manifest("norm.json", { models: models("models/a.safetensors", "models/b.safetensors", "models/a.safetensors"), merge_method: "add_difference", output: { path: "out.safetensors" } });
    const r = await run(["merge", "-m", m, "--normalize", "--dry-run"]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe("stmerge: --normalize: add_difference does not rescale weights (weighted_sum does) [MERGE_UNKNOWN_PARAM]");
  });
});
