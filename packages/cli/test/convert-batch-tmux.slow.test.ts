import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@stmerge/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";
import { TORCH_FIXTURES } from "./torch-fixture-dir.js";
import { hasTmux, startTmuxSession, writeBigTorchCheckpoint, type TmuxSession } from "./tmux-session.js";

const dir = tempDir("stmerge-batch-tmux-");
let tmux: TmuxSession | undefined;
afterAll(() => {
  tmux?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("convert <folder> in a real terminal (tmux)", () => {
  it.skipIf(!hasTmux)("one line per file (live while converting, ✔ or ✖ Error when done), then the summary", { timeout: 300_000 }, async () => {
    const bundle = await bundleStmerge();
    const models = join(dir, "models");
    mkdirSync(models);
    const fixtures = ["sd_lightning.ckpt", "sd_lightning_legacy.ckpt", "vae.pt", "lora.pt", "textual_inversion.pt", "upscaler.pth", "dataparallel.pth", "views_zip.pt", "hostile_in_state_dict.ckpt"];
    for (const f of fixtures) copyFileSync(join(TORCH_FIXTURES, f), join(models, f));
    // ~256 MiB (16 tensors of 16 MiB), so a live line is on screen for a while.
    writeBigTorchCheckpoint(join(models, "zz_big.ckpt"), 16);
    tmux = startTmuxSession(`stmerge-batch-tmux-${process.pid}`, dir, `cd ${dir} && HOME=${dir} STMERGE_CACHE=${dir}/cache.json STMERGE_NO_BANNER=1 node ${bundle} convert models --jobs 1`, { columns: 100, rows: 40 });
    const frames = (await tmux.record(/EXIT=\d+/)).map((f) => f.text);
    const last = frames.at(-1)!;
    expect(last).toContain("EXIT=1");
    const lines = last.split("\n");
    const fileLines = lines.filter((l) => /^\[\s*\d+\/10\] /.test(l));
    // Exactly one line per file on the final screen, each at most 99 columns (never wrapped).
    expect(fileLines.map((l) => l.match(/^\[\s*(\d+)\/10\]/)![1]).sort((a, b) => Number(a) - Number(b))).toEqual(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    for (const l of fileLines) expect(l.length).toBeLessThan(100);
    expect(fileLines).toContainEqual(expect.stringMatching(/^\[ ?\d+\/10\] vae\.pt \(VAE, 3\.50 KB\) █+ 100% ✔ \d+ ms\s*$/));
    expect(fileLines).toContainEqual(expect.stringMatching(/^\[ ?\d+\/10\] zz_big\.ckpt \(Unknown, 268 MB\) █+ 100% ✔ [\d.]+ (ms|s)\s*$/));
    expect(fileLines).toContainEqual(expect.stringMatching(/^\[ ?\d+\/10\] hostile_in_state_dict\.ckpt \(1\.80 KB\) ░+ +0% ✖ Error\s*$/));
    // Mid-run: the big file on a live line with a spinner and a percentage short of 100.
    expect(frames.some((f) => /^\[10\/10\] zz_big\.ckpt \(268 MB\) [█░]+ +\d{1,2}% [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] /m.test(f))).toBe(true);
    expect(last).toMatch(/batch conversion: 1 file not converted/);
    expect(last).toMatch(/success\s+9\/10 files converted/);
    expect(last).toMatch(/failed\s+hostile_in_state_dict\.ckpt: refused, /);
    expect(readdirSync(join(dir, "models_converted")).filter((f) => f.endsWith(".safetensors"))).toHaveLength(9);
  });
});
