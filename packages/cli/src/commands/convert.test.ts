import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { amplifiedSharedViews } from "@stmerge/test-utils";
import { describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";
import { useTorchFixtureDir } from "../../test/torch-fixture-dir.js";

const fixtures = useTorchFixtureDir("stmerge-convert-");
const stage = fixtures.stage;
const sha256Of = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("stmerge convert / verify", () => {
  it("converts a legacy lightning checkpoint, then verify passes", async () => {
    const input = stage("sd_lightning_legacy.ckpt", "model.ckpt");
    const io = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["convert", "model.ckpt"], io)).toBe(0);
    expect(io.out()).toContain(join(fixtures.dir(), "model.safetensors"));
    expect(io.out()).toContain("5 pruned");
    expect(io.out()).toContain("verified");
    const v = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["verify", input, "model.safetensors", "--verbose"], v)).toBe(0);
    expect(v.out()).toMatch(/OK: 5 identical, 0 within cast tolerance, 5 pruned/);
    expect(v.out()).toContain("pruned           model_ema.decay");
  });

  it("--json prints the result; --precision casts; an existing output needs --overwrite", async () => {
    stage("vae.pt");
    const io = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["convert", "vae.pt", "--precision", "fp32", "--json"], io)).toBe(0);
    const result = JSON.parse(io.out());
    expect(result).toMatchObject({ command: "convert", detected: { kind: "vae" }, output: { precision: "fp32", tensors: 5, sha256: sha256Of(result.output.path), sizeBytes: statSync(result.output.path).size }, verified: true });
    const again = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["convert", "vae.pt"], again)).toBe(1);
    expect(again.err()).toMatch(/vae\.safetensors: output already exists \(use --overwrite to replace it\) \[OUTPUT_EXISTS\]/);
    expect(await runCli(["convert", "vae.pt", "--overwrite"], memoryIo({ cwd: fixtures.dir() }))).toBe(0);
    const v = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["verify", "vae.pt", "vae.safetensors", "--json"], v)).toBe(0);
    expect(JSON.parse(v.out())).toMatchObject({ ok: true, counts: { identical: 5 } });
  });

  it("refuses a hostile checkpoint with one line naming the global, and writes nothing", async () => {
    stage("hostile_in_state_dict.ckpt", "evil.ckpt");
    const io = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["convert", "evil.ckpt"], io)).toBe(1);
    const lines = io.err().trim().split("\n").filter((l) => l.startsWith("stmerge:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/evil\.ckpt: refused, the pickle references dangerous global posix\.system .*under key "evil".*\[PICKLE_FORBIDDEN_GLOBAL\]/);
    expect(existsSync(join(fixtures.dir(), "evil.safetensors"))).toBe(false);
    expect(readdirSync(fixtures.dir()).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("refuses a file whose tensors add up to far more than its size, unless --allow-amplification", async () => {
    writeFileSync(join(fixtures.dir(), "views.pt"), amplifiedSharedViews());
    const refused = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["convert", "views.pt", "--no-cache"], refused)).toBe(1);
    expect(refused.err()).toMatch(/^stmerge: .*views\.pt: refused, its tensors add up to \d+ bytes .*\[CHECKPOINT_AMPLIFICATION\]$/m);
    expect(existsSync(join(fixtures.dir(), "views.safetensors"))).toBe(false);
    const allowed = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["convert", "views.pt", "--no-cache", "--allow-amplification"], allowed)).toBe(0);
    expect(statSync(join(fixtures.dir(), "views.safetensors")).size).toBeGreaterThan(4 * statSync(join(fixtures.dir(), "views.pt")).size);
  });

  it("asks for --force on an unusual extension and rejects a bad precision", async () => {
    stage("lora.pt", "lora.model");
    const io = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["convert", "lora.model"], io)).toBe(2);
    expect(io.err()).toContain("pass --force");
    expect(await runCli(["convert", "lora.model", "--force"], memoryIo({ cwd: fixtures.dir() }))).toBe(0);
    expect(await runCli(["convert", "lora.model", "--precision", "fp8"], memoryIo({ cwd: fixtures.dir() }))).toBe(2);
  });

  it("malformed inputs fail with one clear line and no output", async () => {
    writeFileSync(join(fixtures.dir(), "empty.ckpt"), "");
    writeFileSync(join(fixtures.dir(), "random.ckpt"), Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 131 + 7) % 256)));
    const sd = stage("views_zip.pt", "trunc.pt");
    writeFileSync(sd, readFileSync(sd).subarray(0, 3000));
    for (const [file, code] of [["empty.ckpt", "CHECKPOINT_UNSUPPORTED_FORMAT"], ["random.ckpt", "CHECKPOINT_UNSUPPORTED_FORMAT"], ["trunc.pt", "ZIP_MALFORMED"]] as const) {
      const io = memoryIo({ cwd: fixtures.dir() });
      expect(await runCli(["convert", file], io), file).toBe(1);
      const lines = io.err().trim().split("\n").filter((l) => l.startsWith("stmerge:"));
      expect(lines, file).toHaveLength(1);
      expect(lines[0]).toContain(`[${code}]`);
      expect(lines[0]).toContain(file);
      expect(existsSync(join(fixtures.dir(), file.replace(/\.[a-z]+$/, ".safetensors")))).toBe(false);
    }
    stage("vae.pt", "v2.pt");
    writeFileSync(join(fixtures.dir(), "broken.safetensors"), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d]));
    const v = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["verify", "v2.pt", "broken.safetensors"], v)).toBe(1);
    expect(v.err()).toMatch(/broken\.safetensors: .*\[SAFETENSORS_/);
  });
});

describe("stmerge convert and the metadata cache", () => {
  it("records the converted file in the cache with the detected architecture", async () => {
    stage("sd_lightning.ckpt", "cached.ckpt");
    const cacheFile = join(fixtures.dir(), "cache.json");
    const io = memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: cacheFile } });
    expect(await runCli(["convert", "cached.ckpt"], io)).toBe(0);
    const doc = JSON.parse(readFileSync(cacheFile, "utf8")) as { models: Record<string, { filename: string; architecture: string | null; sha256: string; crc32?: string | null }> };
    const converted = Object.values(doc.models).find((e) => e.filename === "cached.safetensors");
    expect(converted?.architecture).toMatch(/^SD/);
    // Hashed while read back for the check, not by a second read: the values are the file's.
    expect(converted?.sha256).toBe(sha256Of(join(fixtures.dir(), "cached.safetensors")));
    expect(converted?.crc32).toMatch(/^[0-9A-F]{8}$/);
    // The source is recorded too, with the SHA-256 computed while converting.
    const source = Object.values(doc.models).find((e) => e.filename === "cached.ckpt");
    expect(source?.sha256).toBe(sha256Of(join(fixtures.dir(), "cached.ckpt")));
    expect(io.out()).toMatch(/cache\s+output and source recorded/);
  });

  it("a second convert of a file the cache knows writes the header first and records the output's hashes taken while writing", async () => {
    stage("sd_lightning.ckpt", "known.ckpt");
    const cacheFile = join(fixtures.dir(), "known-cache.json");
    const io = memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: cacheFile } });
    expect(await runCli(["convert", "known.ckpt", "--json"], io)).toBe(0);
    const output = join(fixtures.dir(), "known.safetensors");
    const first = readFileSync(output);
    const again = memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: cacheFile } });
    expect(await runCli(["convert", "known.ckpt", "--overwrite", "--json"], again)).toBe(0);
    const phases = (doc: string) => (JSON.parse(doc) as { timings: { phases: { phase: string }[] } }).timings.phases.map((p) => p.phase);
    // The first run hashed the input; the second took its SHA-256 from the cache.
    expect(phases(io.out())).toContain("hash");
    expect(phases(again.out())).not.toContain("hash");
    expect(JSON.parse(again.out())).toMatchObject({ input: { sha256: sha256Of(join(fixtures.dir(), "known.ckpt")) }, output: { sha256: sha256Of(output) } });
    const onDisk = readFileSync(output);
    expect(onDisk.equals(first)).toBe(true);
    const doc = JSON.parse(readFileSync(cacheFile, "utf8")) as { models: Record<string, { filename: string; sha256: string; crc32?: string | null }> };
    const converted = Object.values(doc.models).find((e) => e.filename === "known.safetensors");
    expect(converted?.sha256).toBe(sha256Of(output));
    // CivitAI prints the CRC-32's bytes little-endian.
    const crc = Buffer.alloc(4);
    crc.writeUInt32LE(zlib.crc32(onDisk) >>> 0);
    expect(converted?.crc32).toBe(crc.toString("hex").toUpperCase());
  });

  it("leaves the cache alone with --no-cache", async () => {
    stage("sd_lightning.ckpt", "uncached.ckpt");
    const cacheFile = join(fixtures.dir(), "untouched.json");
    expect(await runCli(["convert", "uncached.ckpt", "--no-cache"], memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: cacheFile } }))).toBe(0);
    expect(existsSync(cacheFile)).toBe(false);
  });
});
