import { createHash } from "node:crypto";
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { openSafetensors } from "@stmerge/core-tensors";
import { injectWriteFault } from "@stmerge/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { convertFolder, discoverConvertibleFiles, type BatchConvertSummary } from "./convert-folder.js";

/** Real torch checkpoints written by tools/fixtures/torch_checkpoints.py (owned by safe-pickle's tests). */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../safe-pickle/test/fixtures");
/** What torch.load returned for each fixture: per tensor path, dtype, shape and the SHA-256 of its bytes. */
const TORCH = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as Record<string, { tensors: Record<string, { dtype: string; shape: number[]; sha256: string }> }>;

const root = mkdtempSync(join(tmpdir(), "convert-folder-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
/** A fresh folder holding `files` (target name → fixture name, or bytes). */
function folder(files: Record<string, string | Uint8Array>): string {
  const dir = join(root, `models-${n++}`);
  mkdirSync(dir);
  for (const [name, from] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    if (typeof from === "string") copyFileSync(join(FIXTURES, from), join(dir, name));
    else writeFileSync(join(dir, name), from);
  }
  return dir;
}

const statusOf = (s: BatchConvertSummary) => Object.fromEntries(s.results.map((r) => [r.file.relative, r.status]));
const allFiles = (dir: string): string[] => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();

/** Every tensor of an output has the bytes, dtype and shape torch read from the fixture. */
async function expectTorchBytes(output: string, fixture: string, wrapper: readonly string[]): Promise<number> {
  const prefix = wrapper.length ? `${wrapper.join(".")}.` : "";
  const out = await openSafetensors(output);
  try {
    for (const d of out.descriptors) {
      const torch = TORCH[fixture]!.tensors[prefix + d.name] ?? TORCH[fixture]!.tensors[`${prefix}module.${d.name}`];
      expect({ name: d.name, dtype: d.dtype, shape: d.shape, sha256: createHash("sha256").update(await out.read(d.name)).digest("hex") }).toEqual({ name: d.name, dtype: torch?.dtype, shape: torch?.shape, sha256: torch?.sha256 });
    }
    return out.descriptors.length;
  } finally {
    await out.close();
  }
}

const MIXED = {
  "sd_model.ckpt": "sd_lightning.ckpt",
  "vae.pt": "vae.pt",
  "lora.pt": "lora.pt",
  "embedding.pt": "textual_inversion.pt",
  "upscaler.pth": "upscaler.pth",
  "sub/deeper/parallel.pth": "dataparallel.pth",
  "hostile.ckpt": "hostile_in_state_dict.ckpt",
  "corrupt.ckpt": readFileSync(join(FIXTURES, "sd_lightning.ckpt")).subarray(0, 3000),
  "notes.txt": new TextEncoder().encode("not a model"),
};

describe("discoverConvertibleFiles", () => {
  it("lists .ckpt .pt .pth .bin (sorted), unsupported files apart, sub-folders only when recursive, never the output folder", async () => {
    const dir = folder({ "b.pt": "vae.pt", "a.ckpt": "sd_lightning.ckpt", "x.BIN": "lora.pt", "readme.md": new Uint8Array(1), "sub/c.pth": "upscaler.pth", ".hidden.ckpt": "vae.pt", "out/old.ckpt": "vae.pt" });
    const flat = await discoverConvertibleFiles(dir);
    expect(flat.files.map((f) => f.relative)).toEqual(["a.ckpt", "b.pt", "x.BIN"]);
    expect(flat.unsupported).toEqual(["readme.md"]);
    expect(flat.outputDir).toBe(`${dir}_converted`);
    const deep = await discoverConvertibleFiles(dir, { recursive: true, outputDir: join(dir, "out") });
    expect(deep.files.map((f) => [f.relative, f.output.slice(dir.length + 1)])).toEqual([
      ["a.ckpt", "out/a.safetensors"],
      ["b.pt", "out/b.safetensors"],
      ["sub/c.pth", "out/sub/c.safetensors"],
      ["x.BIN", "out/x.safetensors"],
    ]);
    await expect(discoverConvertibleFiles(join(dir, "a.ckpt"))).rejects.toMatchObject({ code: "BATCH_NOT_A_FOLDER" });
    await expect(discoverConvertibleFiles(join(dir, "missing"))).rejects.toMatchObject({ code: "FILE_NOT_FOUND" });
  });
});

describe("convertFolder", () => {
  it("converts a mixed folder of real torch files, goes on past corrupt and hostile ones, mirrors sub-folders", async () => {
    const dir = folder(MIXED);
    const done: string[] = [];
    const summary = await convertFolder(dir, { recursive: true, onFileDone: (r) => void done.push(r.file.relative) });
    expect(statusOf(summary)).toEqual({
      "corrupt.ckpt": "failed",
      "embedding.pt": "converted",
      "hostile.ckpt": "failed",
      "lora.pt": "converted",
      "sd_model.ckpt": "converted",
      "sub/deeper/parallel.pth": "converted",
      "upscaler.pth": "converted",
      "vae.pt": "converted",
    });
    expect(done).toHaveLength(8);
    expect(summary.unsupported).toEqual(["notes.txt"]);
    expect(summary.stopped).toBeUndefined();
    const byName = Object.fromEntries(summary.results.map((r) => [r.file.relative, r]));
    expect(Object.fromEntries(summary.results.filter((r) => r.status === "converted").map((r) => [r.file.relative, r.format]))).toEqual({
      "embedding.pt": "textual-inversion",
      "lora.pt": "lora",
      "sd_model.ckpt": "sd-checkpoint",
      "sub/deeper/parallel.pth": "sd-checkpoint",
      "upscaler.pth": "upscaler",
      "vae.pt": "vae",
    });
    // The hostile file is refused by safe-pickle (never executed); the reason names the file.
    expect(byName["hostile.ckpt"]!.error!.message).toContain(join(dir, "hostile.ckpt"));
    expect(byName["hostile.ckpt"]!.error!.code).toMatch(/^[A-Z][A-Z0-9_]+$/);
    expect(byName["corrupt.ckpt"]!.error!.message).toContain(join(dir, "corrupt.ckpt"));
    expect(byName["vae.pt"]!.sizeBefore).toBe(3501);
    expect(byName["vae.pt"]!.sizeAfter).toBeGreaterThan(0);
    for (const [rel, fixture] of [["vae.pt", "vae.pt"], ["sd_model.ckpt", "sd_lightning.ckpt"], ["sub/deeper/parallel.pth", "dataparallel.pth"], ["lora.pt", "lora.pt"]] as const) {
      expect(await expectTorchBytes(byName[rel]!.file.output, fixture, byName[rel]!.result!.wrapperPath)).toBeGreaterThan(0);
    }
    expect(allFiles(`${dir}_converted`)).toEqual(["embedding.safetensors", "lora.safetensors", "sd_model.safetensors", "sub/deeper/parallel.safetensors", "upscaler.safetensors", "vae.safetensors"]);
  });

  it("known input hashes: no input is hashed again, each output names its source's SHA-256 and is the same file", async () => {
    const dir = folder({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt" });
    const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
    const plain = await convertFolder(dir, { outputDir: join(dir, "..", `${dir.split("/").pop()}-plain`) });
    const phases = new Set<string>();
    const known = await convertFolder(dir, { inputSha256For: async (file) => sha(file.input), onFileProgress: (_file, event) => void phases.add(event.phase) });
    expect(Object.values(statusOf(known))).toEqual(["converted", "converted"]);
    expect(phases.has("hash")).toBe(false);
    // The output is not read back as a whole: checked as written against the sources' digests.
    expect(phases.has("verify")).toBe(false);
    for (const [i, r] of known.results.entries()) {
      expect(r.result?.inputSha256).toBe(sha(r.file.input));
      expect(readFileSync(r.file.output).equals(readFileSync(plain.results[i]!.file.output))).toBe(true);
    }
  });

  it("two jobs give the same results", async () => {
    const dir = folder(MIXED);
    const one = await convertFolder(dir, { recursive: true, outputDir: join(root, `one-${n}`) });
    const two = await convertFolder(dir, { recursive: true, jobs: 2, outputDir: join(root, `two-${n}`) });
    expect(two.jobs).toBe(2);
    expect(two.results.map((r) => [r.file.relative, r.status, r.format, r.sizeAfter])).toEqual(one.results.map((r) => [r.file.relative, r.status, r.format, r.sizeAfter]));
  });

  it("resume: outputs that verify are skipped, a stale or foreign one fails without being replaced, --overwrite converts again", async () => {
    const dir = folder({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt", "c.pt": "lora.pt" });
    const first = await convertFolder(dir);
    expect(Object.values(statusOf(first))).toEqual(["converted", "converted", "converted"]);
    const out = `${dir}_converted`;
    // b's source is edited after its conversion; c's output is some other file.
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(dir, "b.pt"), later, later);
    const foreign = new TextEncoder().encode("not a model");
    writeFileSync(join(out, "c.safetensors"), foreign);
    const again = await convertFolder(dir);
    expect(statusOf(again)).toEqual({ "a.ckpt": "skipped", "b.pt": "failed", "c.pt": "failed" });
    expect(again.results[0]!.format).toBe("sd-checkpoint");
    expect(again.results[1]!.error).toMatchObject({ code: "OUTPUT_EXISTS", message: expect.stringContaining("older than the source") });
    expect(again.results[2]!.error!.message).toMatch(/exists and is not a conversion of this file .*--overwrite replaces it$/);
    expect(readFileSync(join(out, "c.safetensors"))).toEqual(Buffer.from(foreign));
    const forced = await convertFolder(dir, { overwrite: true });
    expect(Object.values(statusOf(forced))).toEqual(["converted", "converted", "converted"]);
    // A different precision is not the conversion that was asked for.
    const fp16 = await convertFolder(dir, { precision: "fp16" });
    expect(fp16.results.every((r) => r.error?.code === "OUTPUT_EXISTS" && /precision keep, not fp16/.test(r.error.message))).toBe(true);
  });

  it("two inputs with one stem: the second fails naming the first, the first converts", async () => {
    const dir = folder({ "m.ckpt": "sd_lightning.ckpt", "m.pt": "vae.pt" });
    const s = await convertFolder(dir);
    expect(statusOf(s)).toEqual({ "m.ckpt": "converted", "m.pt": "failed" });
    expect(s.results[1]!.error).toMatchObject({ code: "BATCH_OUTPUT_COLLISION", message: expect.stringContaining("same output as m.ckpt") });
  });

  it("an abort abandons the file in progress (no output, no temp file) and leaves the rest not attempted", async () => {
    const dir = folder({ "a.pt": "vae.pt", "b.ckpt": "sd_lightning.ckpt", "c.pt": "lora.pt" });
    const controller = new AbortController();
    const s = await convertFolder(dir, {
      signal: controller.signal,
      onFileProgress: (file, event) => {
        if (file.relative === "b.ckpt" && event.phase === "convert") controller.abort(new Error("interrupted by SIGINT"));
      },
    });
    expect(statusOf(s)).toEqual({ "a.pt": "converted", "b.ckpt": "interrupted", "c.pt": "not-attempted" });
    expect(s.stopped?.reason).toBe("aborted");
    expect(allFiles(`${dir}_converted`)).toEqual(["a.safetensors"]);
  });

  it("a full disk fails that file cleanly (temp removed) and stops the batch", async () => {
    const dir = folder({ "a.pt": "vae.pt", "b.ckpt": "sd_lightning.ckpt", "c.pt": "lora.pt" });
    await convertFolder(dir, { outputDir: join(root, "warm") }); // first writes happen outside the fault
    let fault: Awaited<ReturnType<typeof injectWriteFault>> | undefined;
    try {
      const s = await convertFolder(dir, {
        onFileStart: (file) => {
          if (file.relative === "b.ckpt") void injectWriteFault("ENOSPC", 2).then((f) => (fault = f));
        },
      });
      expect(statusOf(s)).toEqual({ "a.pt": "converted", "b.ckpt": "failed", "c.pt": "not-attempted" });
      expect(s.results[1]!.error).toMatchObject({ code: "DISK_FULL", message: expect.stringContaining(`${dir}_converted/b.safetensors: disk full`) });
      expect(s.stopped).toMatchObject({ reason: "disk", message: expect.stringMatching(/^stopped after b\.ckpt: .*disk full/) });
    } finally {
      fault?.restore();
    }
    expect(readdirSync(`${dir}_converted`)).toEqual(["a.safetensors"]);
  });

  it("a source that changes while it is converted fails and leaves no output", async () => {
    const dir = folder({ "a.ckpt": "sd_lightning.ckpt", "b.pt": "vae.pt" });
    let touched = false;
    const s = await convertFolder(dir, {
      onFileProgress: (file) => {
        if (file.relative === "a.ckpt" && !touched) {
          touched = true;
          appendFileSync(file.input, "appended while converting");
        }
      },
    });
    expect(statusOf(s)).toEqual({ "a.ckpt": "failed", "b.pt": "converted" });
    expect(s.results[0]!.error).toMatchObject({ code: "CONVERT_SOURCE_CHANGED", message: `${join(dir, "a.ckpt")}: changed while it was being converted (size or modification time); its output was removed, convert it again` });
    expect(existsSync(join(`${dir}_converted`, "a.safetensors"))).toBe(false);
  });

  it("an output folder that cannot be created is one typed error before any file", async () => {
    const dir = folder({ "a.pt": "vae.pt" });
    writeFileSync(join(root, "a-file"), "");
    await expect(convertFolder(dir, { outputDir: join(root, "a-file", "out") })).rejects.toMatchObject({ code: "NOT_A_FOLDER", message: `${join(root, "a-file", "out")}: a part of this path is a file, not a folder` });
  });

  it("an empty folder converts nothing and creates no output folder", async () => {
    const dir = folder({ "notes.txt": new Uint8Array(3) });
    const s = await convertFolder(dir);
    expect(s.results).toEqual([]);
    expect(s.unsupported).toEqual(["notes.txt"]);
    expect(existsSync(`${dir}_converted`)).toBe(false);
  });
});
