import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSafetensors } from "@stmerge/core-tensors";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";
import { parseWeightedPath } from "./lora.js";

// LoRA fixtures made by PyTorch: tools/fixtures/lora_fixtures.py.
const LORA_FIXTURES = join(import.meta.dirname, "..", "..", "..", "merge-engine", "test", "fixtures", "lora");
let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-lora-cli-"));
  for (const f of ["sdxl-tiny.safetensors", "sdxl-kohya-lora.safetensors", "sdxl-locon.safetensors", "sdxl-unplaced.safetensors", "bake-sdxl-locon.safetensors"]) copyFileSync(join(LORA_FIXTURES, f), join(dir, f));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stmerge lora bake", () => {
  it("bakes, reports per block, and writes the torch-expected tensors", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "bake", "sdxl-tiny.safetensors", "sdxl-locon.safetensors:1", "-o", "out.safetensors"], io)).toBe(0);
    expect(io.out()).toContain("changed     3 of 16 tensors (3 modules placed)");
    expect(io.out()).toMatch(/per block\s+IN04 2, OUT02 1/);
    expect(io.out()).toMatch(/^╭─ ✔ baked ─+╮$/m);
    expect(io.out()).toMatch(/^│ lora +sdxl-locon\.safetensors × 1 \(\d+ modules: .*\) +│$/m);
    expect(io.out()).toMatch(/^│ next +stmerge inspect out\.safetensors +│$/m);
    const ours = await openSafetensors(join(dir, "out.safetensors"));
    const want = await openSafetensors(join(dir, "bake-sdxl-locon.safetensors"));
    try {
      // Tucker conv bake: the LoCon fixture's values agree exactly here (fp16 output).
      const key = "model.diffusion_model.output_blocks.2.2.conv.weight";
      expect(Buffer.from(await ours.read(key)).equals(Buffer.from(await want.read(key)))).toBe(true);
    } finally {
      await Promise.all([ours.close(), want.close()]);
    }
  });

  it("--json gives the result; an existing output needs --overwrite", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "bake", "sdxl-tiny.safetensors", "sdxl-kohya-lora.safetensors:0.8", "--json"], io)).toBe(0);
    const r = JSON.parse(io.out());
    expect(r).toMatchObject({ tensorsChanged: 9, unplaced: [], loras: [{ name: "sdxl-kohya-lora.safetensors", strength: 0.8, modules: 11 }] });
    expect(r.outputPath).toBe(join(dir, "sdxl-tiny+sdxl-kohya-lora.safetensors"));
    expect(io.err()).toContain("1 module(s) have alpha 0");
    const again = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "bake", "sdxl-tiny.safetensors", "sdxl-kohya-lora.safetensors:0.8"], again)).toBe(1);
    expect(again.err()).toContain("--overwrite");
  });

  it("lists an unplaced module and refuses (exit 1, no output) unless --allow-unmatched", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "bake", "sdxl-tiny.safetensors", "sdxl-unplaced.safetensors", "-o", "refused.safetensors"], io)).toBe(1);
    expect(io.err()).toContain("module lora_unet_input_blocks_7_1_transformer_blocks_0_attn1_to_q not placed: no matching tensor in the checkpoint");
    expect(io.err()).toContain("[LORA_UNPLACED]");
    expect(existsSync(join(dir, "refused.safetensors"))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
    const ok = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "bake", "sdxl-tiny.safetensors", "sdxl-unplaced.safetensors", "-o", "partial.safetensors", "--allow-unmatched"], ok)).toBe(0);
    expect(ok.out()).toContain("1 not placed");
  });

  it("rejects a bad --precision with exit 2", async () => {
    expect(await runCli(["lora", "bake", "sdxl-tiny.safetensors", "sdxl-locon.safetensors", "--precision", "fp8"], memoryIo({ cwd: dir }))).toBe(2);
  });
});

describe("parseWeightedPath", () => {
  it("splits a trailing :number and leaves drive letters and other colons alone", () => {
    expect(parseWeightedPath("a.safetensors:0.6", "LoRA")).toEqual({ path: "a.safetensors", weight: 0.6 });
    expect(parseWeightedPath("a.safetensors:-1e-1", "LoRA")).toEqual({ path: "a.safetensors", weight: -0.1 });
    expect(parseWeightedPath("C:\\loras\\a.safetensors", "LoRA")).toEqual({ path: "C:\\loras\\a.safetensors", weight: 1 });
    expect(parseWeightedPath("C:\\loras\\a.safetensors:2", "LoRA")).toEqual({ path: "C:\\loras\\a.safetensors", weight: 2 });
  });
});

describe("stmerge lora extract / merge", () => {
  it("extract reports per-module errors in --json; bake of the result reproduces the tuned model's changed tensors", async () => {
    for (const f of ["sd1-tiny.safetensors", "sd1-tuned.safetensors"]) copyFileSync(join(LORA_FIXTURES, f), join(dir, f));
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "extract", "sd1-tuned.safetensors", "sd1-tiny.safetensors", "--rank", "4", "--conv-rank", "4", "--json"], io)).toBe(0);
    const r = JSON.parse(io.out());
    expect(r.outputPath).toBe(join(dir, "sd1-tuned-lora-r4.safetensors"));
    expect(r.modules).toHaveLength(4);
    expect(r.modules.every((m: { relativeError: number }) => m.relativeError >= 0 && m.relativeError < 0.1)).toBe(true);
    const human = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "extract", "sd1-tuned.safetensors", "sd1-tiny.safetensors", "--rank", "4", "-o", "r4.safetensors"], human)).toBe(0);
    expect(human.out()).toMatch(/modules\s+3 extracted \(SD1\.5\), \d+ unchanged, 2 3×3 convs left out/);
    expect(human.out()).toMatch(/^╭─ ✔ extracted LoRA ─+╮$/m);
    expect(human.out()).toMatch(/^│ from +sd1-tuned\.safetensors − sd1-tiny\.safetensors \(rank 4\) +│$/m);
    expect(human.out()).toMatch(/^│ rel\. error +mean \d+\.\d\d%, worst \d+\.\d\d% \(.+\) +│$/m);
  });

  it("merge writes an exact concatenation and rejects a bad --rank", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["lora", "merge", "sdxl-kohya-lora.safetensors:0.5", "sdxl-locon.safetensors", "--rank", "64", "-o", "m.safetensors"], io)).toBe(0);
    expect(io.out()).toContain("14: 13 concatenated exactly, 1 re-compressed by SVD");
    expect(io.out()).toMatch(/^╭─ ✔ merged LoRAs ─+╮$/m);
    expect(io.out()).toMatch(/^│ inputs +sdxl-kohya-lora\.safetensors × 0\.5, sdxl-locon\.safetensors × 1 +│$/m);
    expect(await runCli(["lora", "merge", "sdxl-locon.safetensors", "--rank", "0"], memoryIo({ cwd: dir }))).toBe(2);
  });
});

describe("stmerge inspect on a LoRA", () => {
  it("names the format, rank, alpha, targets and base architecture", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["inspect", "sdxl-kohya-lora.safetensors"], io)).toBe(0);
    expect(io.out()).toMatch(/lora\s+11 modules \(11 lora; kohya names\) for SDXL/);
    expect(io.out()).toMatch(/rank\s+2–4; alpha 0, 1, 2, 4/);
    expect(io.out()).toMatch(/targets\s+te1 2, te2 6, unet 3/);
    const json = memoryIo({ cwd: dir });
    expect(await runCli(["inspect", "sdxl-tiny.safetensors", "--json"], json)).toBe(0);
    expect(JSON.parse(json.out()).lora).toBeUndefined();
  });
});
