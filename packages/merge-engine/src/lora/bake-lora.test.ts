import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createCpuKernelBackend, createSafetensorsWriter, decodeToF32, encodeFromF32, openSafetensors, writeSafetensors, type DType } from "@stmerge/core-tensors";
import { seededBytes, tempDir } from "@stmerge/test-utils";
import { bakeLoras, planLoraBake, refuseChunkedDora } from "./bake-lora.js";
import { loadLora } from "./load-lora.js";

// Fixtures and expected bakes: tools/fixtures/lora_fixtures.py (cases.json) and
// tools/fixtures/lora_flux_dora.py (cases-flux-dora.json): PyTorch, consumer formulas.
const FIXTURES = fileURLToPath(new URL("../../test/fixtures/lora/", import.meta.url));
const fixture = (name: string) => join(FIXTURES, name);
type BakeCase = { checkpoint: string; loras: [string, number][]; expected: string };
const cases = ["cases.json", "cases-flux-dora.json"].flatMap((file) => (JSON.parse(readFileSync(fixture(file), "utf8")) as { bakes: BakeCase[] }).bakes);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function outDir(): string {
  const d = tempDir("stmerge-lora-");
  dirs.push(d);
  return d;
}

const MANTISSA_BITS: Partial<Record<DType, number>> = { F32: 23, F16: 10, BF16: 7 };
const MIN_EXPONENT: Partial<Record<DType, number>> = { F32: -126, F16: -14, BF16: -126 };

/** One unit in the last place of `dtype` at magnitude |x|. */
function ulp(dtype: DType, x: number): number {
  const e = Math.max(Math.floor(Math.log2(Math.abs(x) || 2 ** -200)), MIN_EXPONENT[dtype]!);
  return 2 ** (e - MANTISSA_BITS[dtype]!);
}

/**
 * Worst |ours − torch| in units of the output dtype's ulp, taken at the operands' magnitude
 * max(|W|, |W′|): where W + ΔW nearly cancels, the result's own ulp says nothing about the
 * rounding of either operand (F32 sums differ in order between torch's BLAS and ours).
 */
function worstUlps(got: Uint8Array, want: Uint8Array, before: Uint8Array, dtype: DType): number {
  const [g, w, b] = [got, want, before].map((x) => decodeToF32(x, dtype));
  let worst = 0;
  for (let i = 0; i < g!.length; i++) worst = Math.max(worst, Math.abs(g![i]! - w![i]!) / ulp(dtype, Math.max(Math.abs(w![i]!), Math.abs(b![i]!))));
  return worst;
}

async function bakeCase(c: (typeof cases)[number], allowUnmatched = false) {
  const loras = await Promise.all(c.loras.map(async ([name, strength]) => ({ lora: await loadLora(fixture(name)), strength })));
  const outputPath = join(outDir(), "baked.safetensors");
  const result = await bakeLoras(fixture(c.checkpoint), loras, { outputPath, allowUnmatched });
  return { result, outputPath };
}

describe("bakeLoras vs the PyTorch reference", () => {
  it.each(cases.map((c) => [c.expected, c] as const))("%s: every tensor within 1 ulp (at the operands' magnitude) of torch's W + Σ m·s·ΔW", async (_, c) => {
    const { result, outputPath } = await bakeCase(c);
    expect(result.unplaced).toEqual([]);
    const ours = await openSafetensors(outputPath);
    const expected = await openSafetensors(fixture(c.expected));
    const input = await openSafetensors(fixture(c.checkpoint));
    try {
      expect(ours.descriptors.map((d) => [d.name, d.dtype, d.shape])).toEqual(input.descriptors.map((d) => [d.name, d.dtype, d.shape]));
      let changed = 0;
      for (const d of expected.descriptors) {
        const got = await ours.read(d.name);
        const want = await expected.read(d.name);
        const before = await input.read(d.name);
        if (!Buffer.from(want).equals(Buffer.from(before))) changed++;
        if (d.dtype === "I64") expect(Buffer.from(got).equals(Buffer.from(want))).toBe(true);
        else expect(worstUlps(got, want, before, d.dtype), d.name).toBeLessThanOrEqual(1);
      }
      // Each module moves its target (alpha 0 modules excepted, which the reference leaves alone too).
      expect(result.tensorsChanged).toBeGreaterThanOrEqual(changed);
      expect(Object.values(result.changedByBlock).reduce((s, n) => s + n, 0)).toBe(result.tensorsChanged);
    } finally {
      await Promise.all([ours.close(), expected.close(), input.close()]);
    }
  });

  it("worker-thread low-rank products give the same bytes as the inline path", async () => {
    const kernels = createCpuKernelBackend({ workers: 2, inlineBelow: 0 });
    try {
      for (const c of cases.filter((x) => /kohya|sd1|flux/.test(x.expected))) {
        const loras = await Promise.all(c.loras.map(async ([name, strength]) => ({ lora: await loadLora(fixture(name)), strength })));
        const [a, b] = [join(outDir(), "inline.safetensors"), join(outDir(), "workers.safetensors")];
        await bakeLoras(fixture(c.checkpoint), loras, { outputPath: a });
        await bakeLoras(fixture(c.checkpoint), loras, { outputPath: b, kernels });
        expect(Buffer.from(readFileSync(b)).equals(Buffer.from(readFileSync(a))), c.expected).toBe(true);
      }
    } finally {
      await kernels.close();
    }
  });

  it("copies an untouched tensor of several pieces (odd size, F32 and cast to F16) byte for byte, written past the page cache from where it was read", async () => {
    const c = cases.find((x) => /kohya/.test(x.expected))!;
    const loras = await Promise.all(c.loras.map(async ([name, strength]) => ({ lora: await loadLora(fixture(name)), strength })));
    const source = await openSafetensors(fixture(c.checkpoint));
    const dir = outDir();
    const input = join(dir, "with-large.safetensors");
    // 4.5 M F32 elements (18 MB: five 4 MiB pieces, the last one short), after the fixture's tensors.
    const large = { name: "zz_untouched.weight", dtype: "F32" as const, shape: [4_500_001], data: seededBytes(4 * 4_500_001, 7) };
    try {
      const tensors = await Promise.all(source.descriptors.map(async (d) => ({ name: d.name, dtype: d.dtype, shape: d.shape, data: await source.read(d.name) })));
      await writeSafetensors(input, [...tensors, large]);
    } finally {
      await source.close();
    }
    const plain = join(dir, "plain.safetensors");
    await bakeLoras(fixture(c.checkpoint), loras, { outputPath: plain });
    for (const precision of [undefined, "fp16"] as const) {
      const outputPath = join(dir, `direct-${precision ?? "keep"}.safetensors`);
      const sink = createSafetensorsWriter(outputPath, { directWrites: true });
      await bakeLoras(input, loras, { outputPath, sink, ...(precision ? { precision } : {}) });
      const [ours, reference] = [await openSafetensors(outputPath), await openSafetensors(plain)];
      try {
        const want = precision ? encodeFromF32(decodeToF32(large.data, "F32"), "F16") : large.data;
        expect(Buffer.from(await ours.read(large.name)).equals(Buffer.from(want)), precision ?? "keep").toBe(true);
        if (!precision) for (const d of reference.descriptors) expect(Buffer.from(await ours.read(d.name)).equals(Buffer.from(await reference.read(d.name))), d.name).toBe(true);
      } finally {
        await ours.close();
        await reference.close();
      }
    }
  });

  it("cancelled after its first tensor (two changed tensors in flight on worker threads): LORA_BAKE_ABORTED, nothing left in the output folder, and it can bake again", async () => {
    const c = cases.find((x) => /kohya/.test(x.expected))!;
    const loras = await Promise.all(c.loras.map(async ([name, strength]) => ({ lora: await loadLora(fixture(name)), strength })));
    const kernels = createCpuKernelBackend({ workers: 2, inlineBelow: 0 });
    try {
      const dir = outDir();
      const controller = new AbortController();
      const outputPath = join(dir, "cancelled.safetensors");
      await expect(bakeLoras(fixture(c.checkpoint), loras, { outputPath, kernels, signal: controller.signal, onProgress: () => controller.abort() })).rejects.toMatchObject({ code: "LORA_BAKE_ABORTED" });
      expect(readdirSync(dir)).toEqual([]);
      const again = join(dir, "again.safetensors");
      await bakeLoras(fixture(c.checkpoint), loras, { outputPath: again, kernels });
      const plain = join(dir, "plain.safetensors");
      await bakeLoras(fixture(c.checkpoint), loras, { outputPath: plain });
      expect(Buffer.from(readFileSync(again)).equals(Buffer.from(readFileSync(plain)))).toBe(true);
    } finally {
      await kernels.close();
    }
  });

  it("refuses DoRA modules in a chunked bake (a merge manifest's loras): their norm needs the whole tensor", async () => {
    const checkpoint = await openSafetensors(fixture("sd1-dora-tiny.safetensors"));
    try {
      const plan = planLoraBake(checkpoint, [{ lora: await loadLora(fixture("sd1-dora.safetensors")), strength: 1 }]);
      expect(plan.unplaced).toEqual([]);
      expect(() => refuseChunkedDora(plan, "merged.safetensors")).toThrow(/DoRA module .* needs its whole target tensor .*stmerge lora bake/);
      const plain = planLoraBake(checkpoint, [{ lora: await loadLora(fixture("sd1-peft.safetensors")), strength: 1 }]);
      expect(() => refuseChunkedDora(plain, "merged.safetensors")).not.toThrow();
    } finally {
      await checkpoint.close();
    }
  });

  it("puts an SDXL te2 q delta only into rows 0..w-1 of the fused in_proj_weight", async () => {
    const c = cases.find((x) => x.expected === "bake-sdxl-te2-q-only.safetensors")!;
    const { outputPath } = await bakeCase(c);
    const ours = await openSafetensors(outputPath);
    const input = await openSafetensors(fixture(c.checkpoint));
    try {
      const key = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight";
      const [rows, cols] = input.get(key)!.shape as [number, number];
      const w = rows / 3;
      const before = await input.read(key);
      const after = await ours.read(key);
      const rowBytes = cols * 2;
      expect(Buffer.from(after.subarray(w * rowBytes)).equals(Buffer.from(before.subarray(w * rowBytes)))).toBe(true);
      expect(Buffer.from(after.subarray(0, w * rowBytes)).equals(Buffer.from(before.subarray(0, w * rowBytes)))).toBe(false);
    } finally {
      await Promise.all([ours.close(), input.close()]);
    }
  });

  it("counts changed tensors per block and records each LoRA's name, SHA-256 and strength", async () => {
    const c = cases.find((x) => x.expected === "bake-sdxl-kohya.safetensors")!;
    const { result, outputPath } = await bakeCase(c);
    // to_q, proj_in → IN04; time_embed → BASE; te1 q_proj + fc1 (alpha 0 still placed) → TE1; te2 in_proj, out_proj, c_fc, c_proj → TE2.
    expect(result.changedByBlock).toEqual({ IN04: 2, BASE: 1, TE1: 2, TE2: 4 });
    expect(result.architecture).toBe("SDXL");
    const out = await openSafetensors(outputPath);
    try {
      const sha = createHash("sha256").update(readFileSync(fixture("sdxl-kohya-lora.safetensors"))).digest("hex");
      expect(JSON.parse(out.metadata.stmerge_loras!)).toEqual([{ name: "sdxl-kohya-lora.safetensors", sha256: sha, strength: 0.8 }]);
    } finally {
      await out.close();
    }
  });

  it("refuses a LoRA with a module it cannot place, naming it, and writes nothing", async () => {
    const dir = outDir();
    const outputPath = join(dir, "baked.safetensors");
    const lora = await loadLora(fixture("sdxl-unplaced.safetensors"));
    await expect(bakeLoras(fixture("sdxl-tiny.safetensors"), [{ lora, strength: 1 }], { outputPath })).rejects.toMatchObject({
      code: "LORA_UNPLACED",
      message: expect.stringContaining("lora_unet_input_blocks_7_1_transformer_blocks_0_attn1_to_q"),
    });
    expect(existsSync(outputPath)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("with allowUnmatched bakes the placeable modules and still lists the unplaced one", async () => {
    const outputPath = join(outDir(), "baked.safetensors");
    const lora = await loadLora(fixture("sdxl-unplaced.safetensors"));
    const r = await bakeLoras(fixture("sdxl-tiny.safetensors"), [{ lora, strength: 1 }], { outputPath, allowUnmatched: true });
    expect(r.unplaced.map((u) => u.module)).toEqual(["lora_unet_input_blocks_7_1_transformer_blocks_0_attn1_to_q"]);
    expect(r.tensorsChanged).toBe(1);
  });

  it("refuses a delta whose size does not fit its target (SDXL LoRA onto an SD1 checkpoint)", async () => {
    const source = await openSafetensors(fixture("sd1-tiny.safetensors"));
    try {
      const lora = await loadLora(fixture("sdxl-kohya-lora.safetensors"));
      const plan = planLoraBake(source, [{ lora, strength: 1 }]);
      expect(plan.byKey.size).toBe(0);
      expect(plan.unplaced.length).toBe(lora.modules.length);
    } finally {
      await source.close();
    }
  });

  it("casts to --precision while baking (fp16 → fp32 gives the unrounded sum)", async () => {
    const c = cases.find((x) => x.expected === "bake-sdxl-locon.safetensors")!;
    const lora = await loadLora(fixture(c.loras[0]![0]));
    const outputPath = join(outDir(), "baked32.safetensors");
    await bakeLoras(fixture(c.checkpoint), [{ lora, strength: 1 }], { outputPath, precision: "fp32" });
    const ours = await openSafetensors(outputPath);
    const expected = await openSafetensors(fixture(c.expected));
    try {
      expect(ours.descriptors.every((d) => d.dtype === "F32")).toBe(true);
      const key = "model.diffusion_model.input_blocks.4.0.in_layers.2.weight";
      const got = new Float32Array((await ours.read(key)).slice().buffer);
      const want = await expected.read(key);
      const half = new DataView(want.buffer, want.byteOffset, want.byteLength);
      // F32 output is the unrounded sum: within half an fp16 ulp of torch's fp16 result.
      for (let i = 0; i < got.length; i++) {
        const bits = half.getUint16(i * 2, true);
        const exp = (bits >> 10) & 0x1f;
        const ulp = 2 ** (Math.max(exp, 1) - 25);
        const wantValue = (bits & 0x8000 ? -1 : 1) * (exp === 0 ? (bits & 0x3ff) * 2 ** -24 : (1 + (bits & 0x3ff) / 1024) * 2 ** (exp - 15));
        expect(Math.abs(got[i]! - wantValue)).toBeLessThanOrEqual(ulp * 0.5 + 1e-7);
      }
    } finally {
      await Promise.all([ours.close(), expected.close()]);
    }
  });
});
