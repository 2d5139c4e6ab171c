import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";
import { TORCH_FIXTURES } from "./torch-fixture-dir.js";

// Real stmerge processes signalled in the middle of writing (or hashing): each must stop with the
// conventional exit code, one line saying what was interrupted and kept, and no temp file left.
const PRELOAD = join(import.meta.dirname, "slow-file-io.mjs");

let bin: string;
let root: string;

interface Finished {
  readonly code: number | null;
  readonly out: string;
  readonly err: string;
}

/** Starts stmerge slowed down, waits until `ready` holds, sends `signals` (one every `gapMs`), then waits for the exit. */
function interrupted(
  cwd: string,
  args: string[],
  options: { writeDelay?: number; readDelay?: number; ready: (err: string) => boolean; signals: NodeJS.Signals[]; gapMs?: number },
): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: cwd,
      STMERGE_CACHE: join(cwd, "cache.json"),
      STMERGE_TEST_WRITE_DELAY_MS: String(options.writeDelay ?? 0),
      STMERGE_TEST_READ_DELAY_MS: String(options.readDelay ?? 0),
    };
    const child: ChildProcess = spawn(process.execPath, ["--import", PRELOAD, bin, ...args], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let sent = false;
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const poll = setInterval(() => {
      if (sent || !options.ready(err)) return;
      sent = true;
      clearInterval(poll);
      options.signals.forEach((s, i) => setTimeout(() => child.kill(s), i * (options.gapMs ?? 0)));
    }, 10);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(poll);
      resolve({ code: sent ? code : -999, out, err });
    });
  });
}

const temps = (dir: string) => readdirSync(dir).filter((n) => n.endsWith(".tmp"));
const hasTemp = (dir: string) => () => temps(dir).length > 0;
const lastLine = (text: string) => text.trim().split("\n").at(-1)!;

const LAYOUT: [string, number[]][] = [
  ["cond_stage_model.transformer.text_model.final_layer_norm.weight", [8]],
  ["first_stage_model.decoder.conv_in.weight", [4, 4, 3, 3]],
  ["first_stage_model.decoder.conv_out.weight", [4, 4, 3, 3]],
  ["first_stage_model.encoder.conv_in.weight", [4, 4, 3, 3]],
  ["first_stage_model.encoder.conv_out.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.0.0.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [2, 768]],
  ["model.diffusion_model.middle_block.1.proj_in.weight", [8, 8]],
  ["model.diffusion_model.out.2.bias", [4]],
];

async function writeModel(path: string, seed: number): Promise<void> {
  await writeTinySd1Model(path, { seed, layout: LAYOUT });
}

function folder(name: string): string {
  return mkdtempSync(join(root, `${name}-`));
}

beforeAll(async () => {
  bin = await bundleStmerge();
  root = mkdtempSync(join(tmpdir(), "stmerge-interrupt-"));
}, 120_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("interrupting a running stmerge", () => {
  it("convert + SIGINT: exit 130, one line naming the output not written, no temp file, no output", async () => {
    const dir = folder("convert");
    copyFileSync(join(TORCH_FIXTURES, "sd_lightning_legacy.ckpt"), join(dir, "model.ckpt"));
    const r = await interrupted(dir, ["convert", "model.ckpt", "--no-cache"], { writeDelay: 250, ready: hasTemp(dir), signals: ["SIGINT"] });
    expect(r.code).toBe(130);
    expect(lastLine(r.err)).toBe(`stmerge: convert interrupted (SIGINT); ${join(dir, "model.safetensors")} not written (partial temp file removed); inputs unchanged`);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(temps(dir)).toEqual([]);
    expect(existsSync(join(dir, "model.safetensors"))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(["model.ckpt"]);
  }, 30_000);

  it("convert + two Ctrl+C: exits at once, still removing the temp file", async () => {
    const dir = folder("convert-twice");
    copyFileSync(join(TORCH_FIXTURES, "sd_lightning_legacy.ckpt"), join(dir, "model.ckpt"));
    // Signalled once it is well inside a 2 s write, so the first Ctrl+C cannot finish before the second.
    let seen = 0;
    const insideWrite = () => hasTemp(dir)() && (seen ||= Date.now()) > 0 && Date.now() - seen > 300;
    const r = await interrupted(dir, ["convert", "model.ckpt", "--no-cache"], { writeDelay: 2000, ready: insideWrite, signals: ["SIGINT", "SIGINT"], gapMs: 100 });
    expect(r.code).toBe(130);
    expect(lastLine(r.err)).toBe("stmerge: interrupted again (SIGINT); exiting now, removed 1 temp file");
    expect(temps(dir)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(["model.ckpt"]);
  }, 30_000);

  it("merge + SIGTERM: exit 143, the output is not written, no temp file", async () => {
    const dir = folder("merge");
    await writeModel(join(dir, "a.safetensors"), 1);
    await writeModel(join(dir, "b.safetensors"), 2);
    writeFileSync(join(dir, "merge.json"), JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.5 }, { path: "b.safetensors", weight: 0.5 }], merge_method: "weighted_sum", output: { path: "out.safetensors" } }));
    const r = await interrupted(dir, ["merge", "--manifest", "merge.json", "--device", "cpu", "--no-cache"], { writeDelay: 250, ready: hasTemp(dir), signals: ["SIGTERM"] });
    expect(r.code).toBe(143);
    expect(lastLine(r.err)).toBe(`stmerge: merge interrupted (SIGTERM); ${join(dir, "out.safetensors")} not written (partial temp file removed); inputs unchanged`);
    expect(temps(dir)).toEqual([]);
    expect(existsSync(join(dir, "out.safetensors"))).toBe(false);
  }, 30_000);

  it("extract-vae + SIGHUP: exit 129, no VAE file, no temp file; --json also prints the error object", async () => {
    const dir = folder("vae");
    await writeModel(join(dir, "model.safetensors"), 3);
    const r = await interrupted(dir, ["extract-vae", "model.safetensors", "--json"], { writeDelay: 250, ready: hasTemp(dir), signals: ["SIGHUP"] });
    expect(r.code).toBe(129);
    expect(lastLine(r.err)).toMatch(/^stmerge: extract-vae interrupted \(SIGHUP\); .*model\.vae\.safetensors not written/);
    expect(JSON.parse(r.out)).toEqual({ error: { code: "INTERRUPTED", message: lastLine(r.err).replace(/^stmerge: /, ""), file: null } });
    expect(temps(dir)).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual(["model.safetensors"]);
  }, 30_000);

  it("hash + SIGINT while reading: exit 130, no hash printed, one line", async () => {
    const dir = folder("hash");
    await writeModel(join(dir, "model.safetensors"), 4);
    const r = await interrupted(dir, ["hash", "model.safetensors", "--no-cache"], { readDelay: 1500, ready: (err) => err.includes("stmerge "), signals: ["SIGINT"] });
    expect(r.code).toBe(130);
    expect(lastLine(r.err)).toBe("stmerge: hash interrupted (SIGINT); the hashes printed before it are complete");
    expect(r.out).not.toMatch(/SHA256/);
  }, 30_000);

  it("cache add + SIGINT: exit 130, the cache file stays valid JSON (or absent), no temp file", async () => {
    const dir = folder("cache-add");
    await writeModel(join(dir, "one.safetensors"), 5);
    const r = await interrupted(dir, ["cache", "add", "one.safetensors"], { readDelay: 1500, ready: (err) => err.includes("stmerge "), signals: ["SIGINT"] });
    expect(r.code).toBe(130);
    expect(lastLine(r.err)).toBe("stmerge: cache add interrupted (SIGINT); files hashed before it are saved in the cache");
    expect(temps(dir)).toEqual([]);
    if (existsSync(join(dir, "cache.json"))) expect(() => JSON.parse(readFileSync(join(dir, "cache.json"), "utf8"))).not.toThrow();
  }, 30_000);
});
