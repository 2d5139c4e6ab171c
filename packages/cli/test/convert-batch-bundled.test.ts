import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";
import { TORCH_FIXTURES } from "./torch-fixture-dir.js";

// `stmerge convert <folder>` as users run it: the bundled binary in a child process, on folders
// of real PyTorch-written checkpoints mixed with corrupt and hostile files.
const PRELOAD = join(import.meta.dirname, "slow-file-io.mjs");

let bin: string;
let root: string;
beforeAll(async () => {
  bin = await bundleStmerge();
  root = mkdtempSync(join(tmpdir(), "stmerge-batch-"));
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/**
 * Runs the bundled stmerge in `cwd` (HOME and the cache there). `slow` slows its file I/O (test
 * preload); `whenReady` is polled every 10 ms with stderr so far and may signal or change files.
 */
function stmerge(cwd: string, args: string[], options: { slow?: { write?: number; read?: number }; whenReady?: (err: string, child: { kill(s: NodeJS.Signals): void }) => boolean } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: cwd, STMERGE_CACHE: join(cwd, "cache.json"), STMERGE_NO_BANNER: "1" };
    if (options.slow) Object.assign(env, { STMERGE_TEST_WRITE_DELAY_MS: String(options.slow.write ?? 0), STMERGE_TEST_READ_DELAY_MS: String(options.slow.read ?? 0) });
    const child = spawn(process.execPath, [...(options.slow ? ["--import", PRELOAD] : []), bin, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let fired = false;
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const poll = options.whenReady
      ? setInterval(() => {
          if (!fired && options.whenReady!(err, child)) fired = true;
        }, 10)
      : undefined;
    child.on("error", reject);
    child.on("close", (code) => {
      if (poll) clearInterval(poll);
      resolve({ code: options.whenReady && !fired ? -999 : code, out, err });
    });
  });
}

let n = 0;
/** A fresh working folder with `models/` holding `files` (name → fixture name or bytes). */
function workspace(files: Record<string, string | Uint8Array>): string {
  const cwd = join(root, `ws-${n++}`);
  mkdirSync(join(cwd, "models"), { recursive: true });
  for (const [name, from] of Object.entries(files)) {
    const path = join(cwd, "models", name);
    mkdirSync(dirname(path), { recursive: true });
    if (typeof from === "string") copyFileSync(join(TORCH_FIXTURES, from), path);
    else writeFileSync(path, from);
  }
  return cwd;
}

const listed = (dir: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
        .sort()
    : [];
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

const MIXED: Record<string, string | Uint8Array> = {
  "sd_model.ckpt": "sd_lightning.ckpt",
  "legacy.ckpt": "sd_lightning_legacy.ckpt",
  "vae.pt": "vae.pt",
  "lora.pt": "lora.pt",
  "embedding.pt": "textual_inversion.pt",
  "styles/upscaler.pth": "upscaler.pth",
  "hostile.ckpt": "hostile_in_state_dict.ckpt",
  "hostile_legacy.pt": "hostile_legacy_sys_info.pt",
  "corrupt.ckpt": readFileSync(join(TORCH_FIXTURES, "sd_lightning.ckpt")).subarray(0, 3000),
  "notes.txt": new TextEncoder().encode("my notes"),
};

describe("stmerge convert <folder>", () => {
  it("a mixed folder in a pipe: one plain line per file, the summary, the error log, the cache, exit 1 for the failures", async () => {
    const cwd = workspace(MIXED);
    const r = await stmerge(cwd, ["convert", "models", "--recursive"]);
    expect(r.code).toBe(1);
    expect(r.err).not.toMatch(CONTROL);
    const lines = r.err.trim().split("\n");
    expect(lines[0]).toBe(`${join(cwd, "models")}: 9 files to convert into ${join(cwd, "models_converted")}/ (1 other file ignored)`);
    const fileLines = lines.slice(1);
    expect(fileLines).toHaveLength(9);
    const byName = Object.fromEntries(fileLines.map((l) => [l.match(/^\[\d\/9\] (\S+)/)![1]!, l]));
    expect(byName["vae.pt"]).toMatch(/^\[\d\/9\] vae\.pt \(VAE, 3\.50 KB -> [\d.]+ KB\) ok \d+ ms$/);
    expect(byName["sd_model.ckpt"]).toMatch(/\(SD Model, 8\.86 KB -> /);
    expect(byName["embedding.pt"]).toMatch(/\(Embedding, /);
    expect(byName["lora.pt"]).toMatch(/\(LoRA, /);
    expect(byName["styles/upscaler.pth"]).toMatch(/\(Upscaler, /);
    expect(byName["hostile.ckpt"]).toMatch(/^\[\d\/9\] hostile\.ckpt \(1\.80 KB\) failed: .+/);
    expect(byName["hostile_legacy.pt"]).toMatch(/ failed: .+/);
    expect(byName["corrupt.ckpt"]).toMatch(/ failed: .+/);
    // The summary on stdout.
    expect(r.out).toMatch(/batch conversion: 3 files not converted/);
    expect(r.out).toMatch(/success\s+6\/9 files converted/);
    expect(r.out).toMatch(/SD models\s+2 \([\d.]+ KB (→|->) [\d.]+ KB\)/);
    for (const kind of ["VAEs", "LoRAs", "embeddings", "upscalers"]) expect(r.out).toMatch(new RegExp(`${kind}\\s+1 \\(`));
    expect(r.out).toMatch(/failed\s+corrupt\.ckpt: /);
    expect(r.out).toMatch(/(\||│)\s+hostile\.ckpt: refused, /);
    expect(r.out).toMatch(/ignored\s+1 file not \.ckpt \.pt \.pth \.bin \(notes\.txt\)/);
    expect(r.out).toContain(`${join(cwd, "models_converted")}/`);
    const out = join(cwd, "models_converted");
    const logName = readdirSync(out).find((f) => /^conversion_errors_\d{8}T\d{6}Z\.log$/.test(f));
    expect(logName).toBeDefined();
    const log = readFileSync(join(out, logName!), "utf8");
    for (const bad of ["corrupt.ckpt", "hostile.ckpt", "hostile_legacy.pt"]) expect(log).toContain(`== ${bad} (${join(cwd, "models", bad)}`);
    expect(log).toMatch(/code: [A-Z_]+/);
    expect(listed(out).filter((f) => !f.endsWith(".log"))).toEqual(["embedding.safetensors", "legacy.safetensors", "lora.safetensors", "sd_model.safetensors", "styles/upscaler.safetensors", "vae.safetensors"]);
    // Each output is in the metadata cache with the SHA-256 of its bytes (hashed while it was read back).
    const cache = JSON.parse(readFileSync(join(cwd, "cache.json"), "utf8")) as { models: Record<string, { path?: string; sha256: string }> };
    for (const f of ["vae.safetensors", "styles/upscaler.safetensors"]) {
      const entry = Object.values(cache.models).find((e) => e.path === join(out, f));
      expect(entry?.sha256).toBe(sha256(join(out, f)));
    }
  }, 60_000);

  it("--json: one JSON line per file on stdout and a final summary object", async () => {
    const cwd = workspace({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt", "bad.ckpt": "hostile_in_state_dict.ckpt" });
    const r = await stmerge(cwd, ["convert", "models", "--json", "--no-cache"]);
    expect(r.code).toBe(1);
    const docs = r.out.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(docs).toHaveLength(4);
    // File lines come as files finish (two jobs): in index order once sorted.
    docs.splice(0, 3, ...docs.slice(0, 3).sort((x, y) => Number(x.index) - Number(y.index)));
    expect(docs.slice(0, 3).map((d) => [d.type, d.relative, d.status, d.format])).toEqual([
      ["file", "a.ckpt", "converted", "sd-checkpoint"],
      ["file", "b.pt", "converted", "vae"],
      ["file", "bad.ckpt", "failed", null],
    ]);
    expect(docs[1]).toMatchObject({ index: 2, total: 3, output: join(cwd, "models_converted", "b.safetensors"), sizeBefore: 3501, error: null, sourceSha256: sha256(join(cwd, "models", "b.pt")) });
    expect((docs[2]!.error as { code: string }).code).toMatch(/^[A-Z_]+$/);
    expect(docs[3]).toMatchObject({ type: "summary", command: "convert", total: 3, converted: 2, failed: 1, skipped: 0, notAttempted: 0, outputDir: join(cwd, "models_converted"), byFormat: [{ format: "sd-checkpoint", count: 1 }, { format: "vae", count: 1, sizeBefore: 3501 }] });
    expect(docs[3]!.errorLog).toMatch(/conversion_errors_\d{8}T\d{6}Z\.log$/);
  }, 60_000);

  it("resume: a second run skips what verifies; once the failures are gone it exits 0; --overwrite converts again", async () => {
    const cwd = workspace({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt", "bad.ckpt": "hostile_in_state_dict.ckpt" });
    const first = await stmerge(cwd, ["convert", "models", "--no-cache"]);
    expect(first.code).toBe(1);
    const out = join(cwd, "models_converted");
    const before = sha256(join(out, "a.safetensors"));
    const again = await stmerge(cwd, ["convert", "models", "--no-cache"]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/\[1\/3\] a\.ckpt \(SD Model, 8\.86 KB\) ok, already converted/);
    expect(again.out).toMatch(/success\s+2\/3 files converted \(2 already converted, skipped\)/);
    rmSync(join(cwd, "models", "bad.ckpt"));
    const clean = await stmerge(cwd, ["convert", "models", "--no-cache"]);
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/batch conversion complete/);
    expect(sha256(join(out, "a.safetensors"))).toBe(before);
    const forced = await stmerge(cwd, ["convert", "models", "--no-cache", "--overwrite", "--verbose"]);
    expect(forced.code).toBe(0);
    expect(forced.err).toMatch(/\[1\/2\] a\.ckpt \(SD Model, 8\.86 KB -> [\d.]+ KB\) ok/);
    // --verbose: the single-file summary of each file.
    expect(forced.out.match(/src sha256/g)).toHaveLength(2);
  }, 60_000);

  it("empty folder, no supported files, all files failing, output folder not writable: one clear answer each", async () => {
    const empty = workspace({});
    const e = await stmerge(empty, ["convert", "models"]);
    expect({ code: e.code, err: e.err.trim() }).toEqual({ code: 1, err: `stmerge: ${join(empty, "models")}: folder is empty, nothing to convert (--recursive includes sub-folders)` });
    expect(existsSync(join(empty, "models_converted"))).toBe(false);

    const other = workspace({ "readme.md": new Uint8Array(4), "m.safetensors": new Uint8Array(16) });
    const o = await stmerge(other, ["convert", "models", "--batch"]);
    expect({ code: o.code, err: o.err.trim() }).toEqual({ code: 1, err: `stmerge: ${join(other, "models")}: no .ckpt .pt .pth .bin files among its 2 files, nothing to convert (--recursive includes sub-folders)` });

    const bad = workspace({ "x.ckpt": "hostile_in_state_dict.ckpt", "y.pt": new TextEncoder().encode("<html>not a model</html>") });
    const b = await stmerge(bad, ["convert", "models", "--no-cache"]);
    expect(b.code).toBe(1);
    expect(b.out).toMatch(/success\s+0\/2 files converted/);
    expect(b.out).toMatch(/failed\s+x\.ckpt: /);
    expect(listed(join(bad, "models_converted"))).toEqual([expect.stringMatching(/^conversion_errors_.*\.log$/)]);

    const blocked = workspace({ "a.pt": "vae.pt" });
    writeFileSync(join(blocked, "plain-file"), "");
    const w = await stmerge(blocked, ["convert", "models", "--output-dir", "plain-file/out"]);
    // The note naming the files found, then the one error line; nothing converted.
    expect({ code: w.code, lines: w.err.trim().split("\n") }).toEqual({ code: 1, lines: [`${join(blocked, "models")}: 1 file to convert into ${join(blocked, "plain-file", "out")}/`, `stmerge: ${join(blocked, "plain-file", "out")}: a part of this path is a file, not a folder [NOT_A_FOLDER]`] });

    const flags = await stmerge(blocked, ["convert", "models", "-o", "x.safetensors"]);
    expect({ code: flags.code, err: flags.err.trim() }).toEqual({ code: 2, err: `stmerge: ${join(blocked, "models")} is a folder: name where the outputs go with --output-dir, not -o` });
  }, 60_000);

  it("a file changing while it is read fails alone with its output removed; the batch goes on", async () => {
    const cwd = workspace({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt" });
    const out = join(cwd, "models_converted");
    let appended = false;
    const r = await stmerge(cwd, ["convert", "models", "--no-cache", "--jobs", "1"], {
      slow: { read: 40 },
      whenReady: () => {
        if (appended || !existsSync(out) || !readdirSync(out).some((f) => f.startsWith(".a.safetensors"))) return false;
        appendFileSync(join(cwd, "models", "a.ckpt"), "changed while converting");
        return (appended = true);
      },
    });
    expect(r.code).toBe(1);
    expect(r.err).toContain("[1/2] a.ckpt (8.86 KB) failed: changed while it was being converted (size or modification time); its output was removed, convert it again");
    expect(r.err).toMatch(/\[2\/2\] b\.pt \(VAE, .*\) ok/);
    expect(listed(out).filter((f) => !f.endsWith(".log"))).toEqual(["b.safetensors"]);
  }, 60_000);

  it("Ctrl+C: the file in progress is abandoned (no partial output), the summary of what finished, exit 130", async () => {
    const cwd = workspace({ "a.pt": "vae.pt", "b.ckpt": "sd_lightning.ckpt", "c.pt": "lora.pt" });
    const out = join(cwd, "models_converted");
    const r = await stmerge(cwd, ["convert", "models", "--jobs", "1"], {
      slow: { write: 150 },
      whenReady: (err, child) => {
        if (!/\[1\/3\] a\.pt .* ok/.test(err) || !readdirSync(out).some((f) => f.endsWith(".tmp"))) return false;
        child.kill("SIGINT");
        return true;
      },
    });
    expect(r.code).toBe(130);
    expect(r.out).toMatch(/batch conversion interrupted/);
    expect(r.out).toMatch(/success\s+1\/3 files converted/);
    expect(r.out).toMatch(/stopped\s+interrupted; 2 files not converted \(no partial output\)/);
    expect(r.err.trim().split("\n").at(-1)).toBe(`stmerge: convert interrupted (SIGINT); 1 of 3 files converted (summary above); ${join(out, "b.safetensors")} not written (partial temp file removed); inputs unchanged`);
    expect(listed(out)).toEqual(["a.safetensors"]);
    // The finished file and its source are in the metadata cache: the batch's pending records are written on interrupt.
    const cache = JSON.parse(readFileSync(join(cwd, "cache.json"), "utf8")) as { models: Record<string, { source_sha256?: string }>; paths: Record<string, { sha256: string }> };
    expect(Object.keys(cache.paths).sort()).toEqual([join(cwd, "models", "a.pt"), join(out, "a.safetensors")].sort());
    expect(cache.models[cache.paths[join(out, "a.safetensors")]!.sha256]?.source_sha256).toBe(cache.paths[join(cwd, "models", "a.pt")]!.sha256);
    // Resume: the same command converts the rest.
    const resumed = await stmerge(cwd, ["convert", "models"]);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toMatch(/success\s+3\/3 files converted \(1 already converted, skipped\)/);
  }, 60_000);

  it("a second Ctrl+C exits at once, still removing the temp file of the file in progress", async () => {
    const cwd = workspace({ "a.pt": "vae.pt", "b.ckpt": "sd_lightning.ckpt" });
    const out = join(cwd, "models_converted");
    let seen = 0;
    const r = await stmerge(cwd, ["convert", "models", "--jobs", "1", "--no-cache"], {
      slow: { write: 2000 },
      // Well inside a 2 s write, so the first Ctrl+C cannot finish before the second.
      whenReady: (_err, child) => {
        if (!existsSync(out) || !readdirSync(out).some((f) => f.endsWith(".tmp"))) return false;
        seen ||= Date.now();
        if (Date.now() - seen < 300) return false;
        child.kill("SIGINT");
        setTimeout(() => child.kill("SIGINT"), 100);
        return true;
      },
    });
    expect(r.code).toBe(130);
    expect(r.err.trim().split("\n").at(-1)).toBe("stmerge: interrupted again (SIGINT); exiting now, removed 1 temp file");
    expect(listed(out)).toEqual([]);
  }, 60_000);
});
