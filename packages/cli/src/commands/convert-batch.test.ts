import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { injectWriteFault } from "@stmerge/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { FakeTerminal } from "../../test/fake-terminal.js";
import { TORCH_FIXTURES } from "../../test/torch-fixture-dir.js";
import { memoryIo, type CliIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

// `convert <folder>` in-process: what a terminal shows (a fake 80-column one), and a disk that
// fills up in the middle of a file (the test-only write-fault injector).
const root = mkdtempSync(join(tmpdir(), "stmerge-batch-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function models(files: Record<string, string>): string {
  const cwd = join(root, `ws-${n++}`);
  mkdirSync(join(cwd, "models"), { recursive: true });
  for (const [name, fixture] of Object.entries(files)) copyFileSync(join(TORCH_FIXTURES, fixture), join(cwd, "models", name));
  return cwd;
}
const env = (cwd: string) => ({ HOME: cwd, STMERGE_CACHE: join(cwd, "cache.json"), TERM: "xterm-256color", STMERGE_NO_BANNER: "1" });

describe("convert <folder> on a terminal", () => {
  it("one line per file, live lines replaced in place, failures as ✖ Error, lines fit 80 columns, then the summary", async () => {
    const cwd = models({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt", "c_with_a_rather_long_name_that_needs_shortening_on_80_columns.pt": "lora.pt", "d.pt": "textual_inversion.pt", "e.ckpt": "hostile_in_state_dict.ckpt", "f.pth": "upscaler.pth" });
    const term = new FakeTerminal(80);
    term.recordScreens = true;
    let t = 0;
    const io: CliIo = { stdout: term, stderr: term, env: env(cwd), cwd, clock: { now: () => (t += 40), schedule: () => () => undefined } };
    const code = await runCli(["convert", "models", "--jobs", "2"], io);
    expect(code).toBe(1);
    const fileLine = /^\[\d\/6\] /;
    // No screen ever shows a file on two lines.
    for (const screen of term.screens) {
      const counters = screen.filter((l) => fileLine.test(l)).map((l) => l.slice(0, 5));
      expect(new Set(counters).size).toBe(counters.length);
    }
    const screen = term.screen();
    const lines = screen.filter((l) => fileLine.test(l));
    expect(lines).toHaveLength(6);
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\/6\] a\.ckpt \(SD Model, 8\.86 KB\) █+ 100% ✔ \d+ ms$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\/6\] b\.pt \(VAE, 3\.50 KB\) █+ 100% ✔ /));
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\/6\] …\S+_80_columns\.pt \(LoRA, 3\.12 KB\) █+ 100% ✔ /));
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\/6\] e\.ckpt \(1\.80 KB\) ░+ +0% ✖ Error$/));
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(79);
    // Live lines (a spinner instead of the outcome) are gone; the summary follows.
    expect(screen.some((l) => fileLine.test(l) && !/(✔|✖)/.test(l))).toBe(false);
    expect(term.screens.flat().some((l) => /^\[\d\/6\] \S+ \([^)]+\) [█░]+ +\d+% [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] \d/.test(l))).toBe(true);
    expect(screen).toContainEqual(expect.stringMatching(/^╭─ ✖ batch conversion: 1 file not converted ─+╮$/));
    expect(screen).toContainEqual(expect.stringMatching(/^│ success +5\/6 files converted +│$/));
    expect(screen).toContainEqual(expect.stringMatching(/^│ failed +e\.ckpt: refused, /));
  });
});

describe("convert <folder> with the cache", () => {
  it("a second batch over cached inputs (header first, hashed while writing) records each output's true SHA-256 and CRC-32", async () => {
    const cwd = models({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt" });
    expect(await runCli(["convert", "models"], memoryIo({ cwd, env: env(cwd) }))).toBe(0);
    const outputs = ["a.safetensors", "b.safetensors"].map((name) => join(cwd, "models_converted", name));
    const first = outputs.map((p) => readFileSync(p));
    expect(await runCli(["convert", "models", "--overwrite"], memoryIo({ cwd, env: env(cwd) }))).toBe(0);
    const doc = JSON.parse(readFileSync(join(cwd, "cache.json"), "utf8")) as { models: Record<string, { filename: string; sha256: string; crc32?: string | null }> };
    for (const [i, path] of outputs.entries()) {
      const bytes = readFileSync(path);
      expect(bytes.equals(first[i]!)).toBe(true);
      const entry = Object.values(doc.models).find((e) => e.filename === path.split("/").pop());
      expect(entry?.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
      // CivitAI prints the CRC-32's bytes little-endian.
      const crc = Buffer.alloc(4);
      crc.writeUInt32LE(zlib.crc32(bytes) >>> 0);
      expect(entry?.crc32).toBe(crc.toString("hex").toUpperCase());
    }
  });
});

describe("convert <folder> on a full disk", () => {
  it("ENOSPC mid-file: that file fails with the disk-full line, its temp file is removed, the batch stops", async () => {
    // Count the writes converting a.pt alone takes, then fill the disk at the second write after them.
    const probe = models({ "a.pt": "vae.pt" });
    const counting = await injectWriteFault("ENOSPC", Number.MAX_SAFE_INTEGER);
    let writesForA: number;
    try {
      expect(await runCli(["convert", "models", "--no-cache", "--jobs", "1"], memoryIo({ cwd: probe, env: env(probe) }))).toBe(0);
      writesForA = counting.calls();
    } finally {
      counting.restore();
    }
    const cwd = models({ "a.pt": "vae.pt", "b.ckpt": "sd_lightning.ckpt", "c.pt": "lora.pt" });
    const io = memoryIo({ cwd, env: env(cwd) });
    const fault = await injectWriteFault("ENOSPC", writesForA + 2);
    let code: number;
    try {
      code = await runCli(["convert", "models", "--no-cache", "--jobs", "1"], io);
    } finally {
      fault.restore();
    }
    expect(code).toBe(1);
    const out = join(cwd, "models_converted");
    expect(io.err()).toContain(`[2/3] b.ckpt (8.86 KB) failed: ${join(out, "b.safetensors")}: disk full: `);
    expect(io.out()).toMatch(/stopped +stopped after b\.ckpt: .*disk full: .*; 1 file not attempted/);
    expect(readdirSync(out).filter((f) => !f.startsWith("conversion_errors_"))).toEqual(["a.safetensors"]);
  });

  it("--jobs must be a whole number from 1 to 32 (usage error)", async () => {
    const cwd = models({ "a.pt": "vae.pt" });
    writeFileSync(join(cwd, "x"), "");
    const io = memoryIo({ cwd, env: env(cwd) });
    expect(await runCli(["convert", "models", "--jobs", "0"], io)).toBe(2);
    expect(io.err().trim()).toBe('stmerge: --jobs must be a whole number from 1 to 32, got "0"');
  });
});
