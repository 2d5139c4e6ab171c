import { copyFileSync, existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCpuKernelBackend, createSafetensorsWriter, decodeToF32, openSafetensors, type KernelBackend, type TensorSource } from "@stmerge/core-tensors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bakeLoras, planLoraBake } from "../lora/bake-lora.js";
import { loadLora } from "../lora/load-lora.js";
import { parseManifest } from "../manifest/load-manifest.js";
import { tempDir } from "@stmerge/test-utils";
import { createMethodRegistry } from "../methods/method-registry.js";
import { buildMergePlan } from "./build-merge-plan.js";
import { executeMergePlan } from "./execute-merge-plan.js";
import { planDescriptors } from "./merge-plan.js";
import { openMergeInput } from "./open-merge-input.js";
import { runMerge } from "./run-merge.js";

// Two SD1 checkpoints and a kohya LoRA from tools/fixtures/lora_fixtures.py (PyTorch).
const FIXTURES = fileURLToPath(new URL("../../test/fixtures/lora/", import.meta.url));
const LORA = "sd1-kohya-diffusers-names.safetensors";

let kernels: KernelBackend;
const dirs: string[] = [];
beforeAll(() => {
  kernels = createCpuKernelBackend({ workers: 0 });
});
afterAll(async () => {
  await kernels.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function workDir(): string {
  const dir = tempDir("stmerge-merge-lora-");
  dirs.push(dir);
  for (const f of ["sd1-tiny.safetensors", "sd1-tuned.safetensors", LORA, "sdxl-kohya-lora.safetensors"]) copyFileSync(join(FIXTURES, f), join(dir, f));
  return dir;
}

function manifestIn(dir: string, json: Record<string, unknown>) {
  const text = JSON.stringify({ models: [{ path: "sd1-tiny.safetensors", weight: 0.7 }, { path: "sd1-tuned.safetensors", weight: 0.3 }], ...json }, null, 2);
  writeFileSync(join(dir, "m.json"), text);
  return parseManifest(text, join(dir, "m.json"));
}

async function tensors(path: string): Promise<Map<string, { dtype: string; bytes: Uint8Array }>> {
  const s = await openSafetensors(path);
  try {
    const out = new Map<string, { dtype: string; bytes: Uint8Array }>();
    for (const d of s.descriptors) out.set(d.name, { dtype: d.dtype, bytes: (await s.read(d.name)).slice() });
    return out;
  } finally {
    await s.close();
  }
}

/** Merges without LoRAs, then bakes the merged file with `bakeLoras`: the two-pass reference. */
async function mergeThenBake(dir: string, precision: string, strength: number): Promise<string> {
  const merged = join(dir, "merged-only.safetensors");
  await runMerge(manifestIn(dir, { output: "merged-only.safetensors", output_precision: precision }), { kernels });
  const baked = join(dir, "merged-then-baked.safetensors");
  await bakeLoras(merged, [{ lora: await loadLora(join(dir, LORA)), strength }], { outputPath: baked });
  return baked;
}

describe("runMerge with manifest loras", () => {
  it("F32 output: merge-and-bake in one pass is byte-identical to merging then bakeLoras", async () => {
    const dir = workDir();
    const reference = await mergeThenBake(dir, "fp32", 0.8);
    const r = await runMerge(manifestIn(dir, { output: "one-pass.safetensors", output_precision: "fp32", loras: [{ path: LORA, strength: 0.8 }] }), { kernels });
    expect(r.loras).toHaveLength(1);
    expect(r.loras[0]!.tensorsChanged).toBeGreaterThan(0);
    const [got, want] = await Promise.all([tensors(r.outputPath), tensors(reference)]);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    // Both add fround(m·s·ΔW) to the same F32 merged value and encode F32 once: no rounding differs.
    for (const [key, t] of want) expect(Buffer.from(got.get(key)!.bytes).equals(Buffer.from(t.bytes)), key).toBe(true);
    const plain = await tensors(join(dir, "merged-only.safetensors"));
    const changed = [...got].filter(([key, t]) => !Buffer.from(t.bytes).equals(Buffer.from(plain.get(key)!.bytes)));
    expect(changed.length).toBe(r.loras[0]!.tensorsChanged);
    const s = await openSafetensors(r.outputPath);
    const recorded = JSON.parse(s.metadata.stmerge_loras!) as unknown;
    await s.close();
    expect(recorded).toEqual([{ name: LORA, sha256: (await loadLora(join(dir, LORA))).sha256, strength: 0.8 }]);
  });

  it("F16 output: within 1 F16 ulp of merging then bakeLoras (the reference rounds the merge to F16 before adding ΔW)", async () => {
    const dir = workDir();
    const reference = await mergeThenBake(dir, "fp16", 1);
    const r = await runMerge(manifestIn(dir, { output: "one-pass.safetensors", output_precision: "fp16", loras: [{ path: LORA }] }), { kernels });
    const [got, want, plain] = await Promise.all([tensors(r.outputPath), tensors(reference), tensors(join(dir, "merged-only.safetensors"))]);
    let differing = 0;
    for (const [key, t] of want) {
      const g = decodeToF32(got.get(key)!.bytes, "F16");
      const w = decodeToF32(t.bytes, "F16");
      const p = decodeToF32(plain.get(key)!.bytes, "F16");
      for (let i = 0; i < w.length; i++) {
        // One F16 ulp at the operands' magnitude (max of merged and baked), as in bake-lora.test.ts.
        const magnitude = Math.max(Math.abs(w[i]!), Math.abs(p[i]!), 2 ** -14);
        const ulp = 2 ** (Math.floor(Math.log2(magnitude)) - 10);
        expect(Math.abs(g[i]! - w[i]!), `${key}[${i}]`).toBeLessThanOrEqual(ulp);
        if (g[i] !== p[i]) differing++;
      }
    }
    expect(differing).toBeGreaterThan(0);
  });

  it("streamed in 7-element chunks (ΔW added window by window) equals merging then bakeLoras", async () => {
    const dir = workDir();
    const reference = await mergeThenBake(dir, "fp32", 0.8);
    const method = createMethodRegistry().get("weighted_sum");
    const sources = await Promise.all(["sd1-tiny.safetensors", "sd1-tuned.safetensors"].map((f) => openSafetensors(join(dir, f))));
    try {
      const inputs = sources.map((s, i) => ({ name: `m${i}`, path: s.path, descriptors: s.descriptors, metadata: s.metadata, weight: [0.7, 0.3][i]! }));
      const plan = buildMergePlan(inputs, { method, outputPrecision: "fp32", maxChunkElements: 7 });
      expect(plan.entries.some((e) => e.chunkElements === 7 && e.shape.reduce((a, b) => a * b, 1) > 7)).toBe(true);
      const loras = planLoraBake({ path: "out", descriptors: planDescriptors(plan) }, [{ lora: await loadLora(join(dir, LORA)), strength: 0.8 }]);
      expect(loras.unplaced).toEqual([]);
      const out = join(dir, "chunked.safetensors");
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(out), kernels, method, loras });
      const [got, want] = await Promise.all([tensors(out), tensors(reference)]);
      for (const [key, t] of want) expect(Buffer.from(got.get(key)!.bytes).equals(Buffer.from(t.bytes)), key).toBe(true);
    } finally {
      await Promise.all(sources.map((s) => s.close()));
    }
  });

  it("dry run lists each LoRA with the tensors it changes and writes nothing", async () => {
    const dir = workDir();
    const r = await runMerge(manifestIn(dir, { output: "dry.safetensors", loras: [{ path: LORA, strength: 0.5 }] }), { dryRun: true });
    expect(r.loras).toEqual([{ name: LORA, path: join(dir, LORA), sha256: expect.stringMatching(/^[0-9a-f]{64}$/), strength: 0.5, tensorsChanged: expect.any(Number) }]);
    expect(r.loras[0]!.tensorsChanged).toBeGreaterThan(0);
    expect(existsSync(join(dir, "dry.safetensors"))).toBe(false);
  });

  it("a module that fits no merged tensor refuses the merge before any model tensor is read, nothing written", async () => {
    const dir = workDir();
    let modelReads = 0;
    const openSource = async (path: string): Promise<TensorSource> => {
      const s = await openMergeInput(path);
      if (path.endsWith("lora.safetensors")) return s;
      return new Proxy(s, {
        get(target, prop, receiver) {
          if (prop === "read" || prop === "readRange") modelReads++;
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      });
    };
    const manifest = manifestIn(dir, { output: "refused.safetensors", loras: [{ path: "sdxl-kohya-lora.safetensors" }] });
    await expect(runMerge(manifest, { kernels, openSource })).rejects.toMatchObject({ code: "LORA_UNPLACED", message: expect.stringMatching(/sdxl-kohya-lora\.safetensors: \d+ LoRA module\(s\) cannot be placed in .*refused\.safetensors: .*nothing written$/) });
    expect(modelReads).toBe(0);
    expect(readdirSync(dir).filter((f) => f.startsWith("refused"))).toEqual([]);
  });

  it("rejects an unknown key in a loras entry", () => {
    const dir = workDir();
    expect(() => manifestIn(dir, { loras: [{ path: LORA, strenght: 1 }] })).toThrow(/strenght/);
  });
});
