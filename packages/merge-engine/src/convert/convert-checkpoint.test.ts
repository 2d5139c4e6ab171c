import { copyFile, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as zlib from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeToF32, isStmergeError, openSafetensors, writeSafetensors } from "@stmerge/core-tensors";
import { seededBytes, writeTorchCheckpoint } from "@stmerge/test-utils";
import { convertCheckpoint, defaultConvertOutput } from "./convert-checkpoint.js";
import { openStateDict } from "./open-state-dict.js";
import { verifyConversion } from "./verify-conversion.js";

/** The reference CRC-32: node:zlib's over the whole file (Node 20.15+). */
const zlibCrc32 = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;

/** Real torch checkpoints written by tools/fixtures/torch_checkpoints.py (owned by safe-pickle's tests). */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../safe-pickle/test/fixtures");

/** What torch.load returned for each fixture: per tensor path, dtype, shape and the SHA-256 of its contiguous bytes. */
const TORCH = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8")) as Record<string, { tensors: Record<string, { dtype: string; shape: number[]; sha256: string }> }>;

/**
 * Checks a conversion against the digests real PyTorch wrote (not against our own reader): every
 * tensor torch found under the state dict is in the output with the same dtype, shape and bytes,
 * unless it is listed as pruned; the output holds nothing else. Returns how many tensors matched.
 */
async function expectMatchesTorch(fixture: string, output: string, wrapperPath: readonly string[], pruned: readonly string[] = [], renames: Readonly<Record<string, string>> = {}): Promise<number> {
  const prefix = wrapperPath.length ? `${wrapperPath.join(".")}.` : "";
  const expected = new Map<string, { dtype: string; shape: number[]; sha256: string }>();
  for (const [path, tensor] of Object.entries(TORCH[fixture]!.tensors)) {
    if (!path.startsWith(prefix)) continue;
    const stripped = path.slice(prefix.length).replace(/^module\./, "");
    const name = renames[stripped] ?? stripped;
    if (!pruned.includes(name)) expected.set(name, tensor);
  }
  const out = await openSafetensors(output);
  try {
    expect(out.descriptors.map((d) => d.name).sort()).toEqual([...expected.keys()].sort());
    for (const [name, tensor] of expected) {
      const d = out.get(name)!;
      expect({ name, dtype: d.dtype, shape: d.shape }).toEqual({ name, dtype: tensor.dtype, shape: tensor.shape });
      expect({ name, sha256: createHash("sha256").update(await out.read(name)).digest("hex") }).toEqual({ name, sha256: tensor.sha256 });
    }
  } finally {
    await out.close();
  }
  return expected.size;
}

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "convert-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function staged(name: string): Promise<string> {
  const path = join(dir, `${Math.random().toString(36).slice(2)}-${name}`);
  await copyFile(join(FIXTURES, name), path);
  return path;
}

describe("convertCheckpoint", () => {
  it("converts a lightning SD checkpoint: state_dict found, EMA and schedule pruned, provenance written", async () => {
    const input = await staged("sd_lightning.ckpt");
    const result = await convertCheckpoint(input);
    expect(result.output).toBe(defaultConvertOutput(input));
    expect(result.detected.kind).toBe("sd-checkpoint");
    expect(result.wrapperPath).toEqual(["state_dict"]);
    expect(result.pruned).toEqual(expect.arrayContaining(["model_ema.decay", "model_ema.num_updates", "betas", "alphas_cumprod"]));
    const out = await openSafetensors(result.output);
    expect(out.descriptors.map((d) => d.name).sort()).toEqual([
      "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
      "first_stage_model.decoder.conv_out.weight",
      "model.diffusion_model.input_blocks.0.0.bias",
      "model.diffusion_model.input_blocks.0.0.weight",
      "model.diffusion_model.out.2.weight",
    ]);
    expect(out.metadata["stmerge.source"]).toBe(input.split("/").pop());
    expect(out.metadata["stmerge.source_sha256"]).toMatch(/^[0-9a-f]{64}$/);
    expect(out.metadata["stmerge.source_format"]).toBe("torch-zip");
    expect(out.metadata["stmerge.detected_format"]).toBe("sd-checkpoint");
    expect(out.metadata["stmerge.converter"]).toMatch(/^stmerge-convert \d/);
    await out.close();
    expect(await expectMatchesTorch("sd_lightning.ckpt", result.output, result.wrapperPath, result.pruned)).toBe(5);
  });

  it("--no-prune keeps everything; legacy format reads the same", async () => {
    const input = await staged("sd_lightning_legacy.ckpt");
    const result = await convertCheckpoint(input, { prune: false });
    expect(result.sourceFormat).toBe("torch-legacy");
    expect(result.tensorsWritten).toBe(10);
    expect(await expectMatchesTorch("sd_lightning_legacy.ckpt", result.output, result.wrapperPath)).toBe(10);
  });

  it("in pieces smaller than its tensors (zip tensors read by ranges; views and legacy tensors read whole once, their pieces copied; casts piece by piece) the output is what PyTorch read, and the same file as in whole tensors", async () => {
    const { readFile } = await import("node:fs/promises");
    for (const fixture of ["sd_lightning.ckpt", "sd_lightning_legacy.ckpt", "views_zip.pt", "views_legacy.pt"]) {
      const input = await staged(fixture);
      const inputSha256 = createHash("sha256").update(readFileSync(input)).digest("hex");
      const whole = await convertCheckpoint(input, { output: join(dir, `whole-${fixture}.safetensors`), prune: false, inputSha256 });
      const wholeCast = await convertCheckpoint(input, { output: join(dir, `whole-fp16-${fixture}.safetensors`), prune: false, inputSha256, precision: "fp16" });
      // 1 byte: every tensor in pieces of one block of output (4096 bytes) or less; 6000: a few elements each.
      for (const readAheadBytes of [1, 6000]) {
        const label = `${fixture} in pieces of ${readAheadBytes} bytes`;
        const pieces = await convertCheckpoint(input, { output: join(dir, `pieces-${readAheadBytes}-${fixture}.safetensors`), prune: false, inputSha256, readAheadBytes });
        expect(await expectMatchesTorch(fixture, pieces.output, pieces.wrapperPath), label).toBeGreaterThan(4);
        expect((await readFile(pieces.output)).equals(await readFile(whole.output)), label).toBe(true);
        expect(pieces.outputCrc32, label).toBe(whole.outputCrc32);
        const cast = await convertCheckpoint(input, { output: join(dir, `pieces-fp16-${readAheadBytes}-${fixture}.safetensors`), prune: false, inputSha256, readAheadBytes, precision: "fp16" });
        expect((await readFile(cast.output)).equals(await readFile(wholeCast.output)), `${label}, cast to fp16`).toBe(true);
      }
    }
  });

  it("strips DataParallel prefixes under a `model` wrapper", async () => {
    const input = await staged("dataparallel.pth");
    const result = await convertCheckpoint(input);
    expect(result.strippedPrefixes).toBe(5);
    expect(result.wrapperPath).toEqual(["model"]);
    const out = await openSafetensors(result.output);
    expect(out.descriptors.every((d) => !d.name.startsWith("module."))).toBe(true);
    await out.close();
    expect(await expectMatchesTorch("dataparallel.pth", result.output, result.wrapperPath)).toBe(5);
  });

  it.each([
    ["textual_inversion.pt", "textual-inversion", ["emb_params"]],
    ["upscaler.pth", "upscaler", ["body.0.rdb1.conv1.weight", "conv_first.bias", "conv_first.weight", "conv_last.weight", "conv_up1.weight"]],
    ["vae.pt", "vae", ["decoder.conv_out.weight", "encoder.conv_in.bias", "encoder.conv_in.weight", "post_quant_conv.weight", "quant_conv.weight"]],
    ["lora.pt", "lora", undefined],
  ])("%s is detected as %s and keeps every tensor", async (name, kind, keys) => {
    const input = await staged(name);
    const result = await convertCheckpoint(input);
    expect(result.detected.kind).toBe(kind);
    expect(result.pruned).toEqual([]);
    if (keys) {
      const out = await openSafetensors(result.output);
      expect(out.descriptors.map((d) => d.name).sort()).toEqual(keys);
      await out.close();
    }
    // A1111 names a textual inversion's single vector "emb_params" (torch holds it as string_to_param["*"]).
    expect(await expectMatchesTorch(name, result.output, result.wrapperPath, [], { "*": "emb_params" })).toBeGreaterThan(0);
  });

  it("upscalers use params_ema, not params", async () => {
    const input = await staged("upscaler.pth");
    const result = await convertCheckpoint(input);
    expect(result.wrapperPath).toEqual(["params_ema"]);
  });

  it("materializes strided views and shared storages; keeps 0-d and empty tensors", async () => {
    const input = await staged("views_zip.pt");
    const result = await convertCheckpoint(input);
    const out = await openSafetensors(result.output);
    expect(out.get("scalar")?.shape).toEqual([]);
    expect(out.get("empty")?.shape).toEqual([0, 4]);
    expect([...decodeToF32(await out.read("transposed"), "F32")].slice(0, 6)).toEqual([0, 6, 12, 18, 1, 7]);
    expect([...decodeToF32(await out.read("strided"), "F32")].slice(0, 4)).toEqual([0, 2, 4, 6]);
    await out.close();
    expect(await expectMatchesTorch("views_zip.pt", result.output, result.wrapperPath)).toBeGreaterThan(5);
  });

  it("casts precision and verify accepts the cast within tolerance", async () => {
    const input = await staged("views_zip.pt");
    const output = join(dir, "views-fp16.safetensors");
    const result = await convertCheckpoint(input, { output, precision: "fp16" });
    const out = await openSafetensors(output);
    expect(out.get("f32")?.dtype).toBe("F16");
    expect(out.get("bf16")?.dtype).toBe("F16");
    expect(out.get("i64")?.dtype).toBe("I64");
    await out.close();
    const report = await verifyConversion(input, result.output);
    expect(report.ok).toBe(true);
    expect(report.counts["within-tolerance"]).toBeGreaterThan(0);
  });

  it("refuses an existing output without overwrite, and hostile files leave no output", async () => {
    const input = await staged("vae.pt");
    const output = join(dir, "exists.safetensors");
    await writeFile(output, "keep me");
    await expect(convertCheckpoint(input, { output })).rejects.toMatchObject({ code: "OUTPUT_EXISTS" });
    await convertCheckpoint(input, { output, overwrite: true });

    const hostile = await staged("hostile_in_state_dict.ckpt");
    const error = await convertCheckpoint(hostile).catch((e: unknown) => e);
    expect(isStmergeError(error) && error.code).toBe("PICKLE_FORBIDDEN_GLOBAL");
    expect(existsSync(defaultConvertOutput(hostile))).toBe(false);
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("verifyConversion", () => {
  it("reports a changed tensor and a missing unprunable key", async () => {
    const input = await staged("vae.pt");
    const result = await convertCheckpoint(input);
    const { writeSafetensors } = await import("@stmerge/core-tensors");
    const src = await openSafetensors(result.output);
    const tensors = [];
    const [, tamperedName] = src.descriptors.map((d) => d.name);
    for (const d of src.descriptors.slice(1)) {
      const data = (await src.read(d.name)).slice();
      if (d.name === tamperedName) data[0]! ^= 0x01;
      tensors.push({ name: d.name, dtype: d.dtype, shape: d.shape, data });
    }
    await src.close();
    const tampered = join(dir, "tampered.safetensors");
    await writeSafetensors(tampered, tensors);
    const report = await verifyConversion(input, tampered);
    expect(report.ok).toBe(false);
    expect(report.counts.mismatch).toBe(1);
    expect(report.counts.missing).toBe(1);
    expect(report.tensors.find((t) => t.status === "mismatch")?.name).toBe(tamperedName);
  });
});

describe("provenance", () => {
  it.each(["views_zip.pt", "views_legacy.pt", "sd_lightning.ckpt"])("%s: the recorded SHA-256 is the input file's", async (name) => {
    const { readFile } = await import("node:fs/promises");
    const { createHash } = await import("node:crypto");
    const input = await staged(name);
    const { stat, utimes } = await import("node:fs/promises");
    const before = await stat(input);
    const result = await convertCheckpoint(input, { output: join(dir, `sha-${name}.safetensors`) });
    expect(result.inputSha256).toBe(createHash("sha256").update(await readFile(input)).digest("hex"));
    // The size and mtime the hash was taken for, not the file's when asked later.
    await utimes(input, new Date(), new Date(before.mtimeMs + 5000));
    expect(result.inputHashedAs).toEqual({ size: before.size, mtimeMs: before.mtimeMs });
  });

  it("a safetensors input converts too (e.g. a precision change)", async () => {
    const input = await staged("vae.pt");
    const st = await convertCheckpoint(input, { output: join(dir, "vae-src.safetensors") });
    const again = await convertCheckpoint(st.output, { output: join(dir, "vae-fp32.safetensors"), precision: "fp32" });
    expect(again.sourceFormat).toBe("safetensors");
    expect((await verifyConversion(input, again.output)).ok).toBe(true);
  });

  it("a safetensors input in pieces (its ranges read in place): each tensor's bytes as in the input, cast or not the same file as whole", async () => {
    const { readFile } = await import("node:fs/promises");
    const input = join(dir, "pieces-input.safetensors");
    const tensors = [
      { name: "model.diffusion_model.a.weight", dtype: "F32" as const, shape: [3000], data: seededBytes(4 * 3000, 31) },
      { name: "model.diffusion_model.b.weight", dtype: "F16" as const, shape: [50, 101], data: seededBytes(2 * 5050, 32) },
      { name: "model.diffusion_model.c.bias", dtype: "F32" as const, shape: [7], data: seededBytes(28, 33) },
    ];
    await writeSafetensors(input, tensors);
    for (const precision of ["keep", "fp16"] as const) {
      const whole = await convertCheckpoint(input, { output: join(dir, `st-whole-${precision}.safetensors`), precision, prune: false, inputSha256: "0".repeat(64) });
      for (const readAheadBytes of [1, 6000]) {
        const label = `${precision}, pieces of ${readAheadBytes} bytes`;
        const pieces = await convertCheckpoint(input, { output: join(dir, `st-pieces-${precision}-${readAheadBytes}.safetensors`), precision, prune: false, inputSha256: "0".repeat(64), readAheadBytes });
        expect((await readFile(pieces.output)).equals(await readFile(whole.output)), label).toBe(true);
        if (precision === "keep") {
          const out = await openSafetensors(pieces.output);
          try {
            for (const t of tensors) expect(Buffer.from(await out.read(t.name)).equals(Buffer.from(t.data)), `${label}: ${t.name}`).toBe(true);
          } finally {
            await out.close();
          }
        }
      }
    }
  });
});

describe("convertCheckpoint never destroys its input", () => {
  it("refuses -o link/in.ckpt --overwrite where link points back at the input's folder; the input is unchanged", async () => {
    const { mkdir, readFile, symlink } = await import("node:fs/promises");
    const models = join(dir, "same-file-models");
    await mkdir(models);
    const input = join(models, "in.ckpt");
    await copyFile(join(FIXTURES, "sd_lightning.ckpt"), input);
    const before = await readFile(input);
    await symlink(models, join(dir, "same-file-link"));
    await expect(convertCheckpoint(input, { output: join(dir, "same-file-link", "in.ckpt"), overwrite: true })).rejects.toMatchObject({ code: "OUTPUT_IS_INPUT" });
    expect((await readFile(input)).equals(before)).toBe(true);
    expect(await readdir(models)).toEqual(["in.ckpt"]);
  });
});

describe("convertCheckpoint with two runs writing one output", () => {
  it("with the input's SHA-256 known, the header goes first and the tap hashes the final file while it is written; the input is not hashed again", async () => {
    const { mkdir, readFile } = await import("node:fs/promises");
    const folder = join(dir, "header-first");
    await mkdir(folder);
    const input = join(folder, "in.ckpt");
    await copyFile(join(FIXTURES, "sd_lightning.ckpt"), input);
    const inputSha256 = createHash("sha256").update(readFileSync(input)).digest("hex");
    const reference = await convertCheckpoint(input, { output: join(folder, "hashed.safetensors") });
    expect(reference.inputSha256).toBe(inputSha256);

    const phases: string[] = [];
    const outputHash = createHash("sha256");
    let size = -1;
    let fed = 0;
    let fedWhenConverted = -1;
    const tap = {
      start: (file: { size: number }) => void (size = file.size),
      bytes: (chunk: Uint8Array, offset: number) => {
        expect(offset).toBe(fed);
        fed += chunk.byteLength;
        outputHash.update(chunk);
      },
    };
    const result = await convertCheckpoint(input, {
      output: join(folder, "known.safetensors"),
      inputSha256,
      outputTap: tap,
      onProgress: (p) => {
        if (p.phase === "convert" && p.bytesDone === p.bytesTotal) fedWhenConverted = fed;
        phases.push(p.phase);
      },
    });
    const onDisk = await readFile(result.output);
    expect(result.inputSha256).toBe(inputSha256);
    // Not hashed here, so no stats of its own for a cache to record it under.
    expect(result.inputHashedAs).toBeUndefined();
    // Same file as the hash-while-converting path, byte for byte.
    expect(onDisk.equals(await readFile(reference.output))).toBe(true);
    expect(size).toBe(onDisk.byteLength);
    // Every byte reached the tap as it was written (no read-back of the output), and its digest is node:crypto's over the final file.
    expect(fedWhenConverted).toBe(onDisk.byteLength);
    expect(outputHash.digest("hex")).toBe(createHash("sha256").update(onDisk).digest("hex"));
    expect(phases).not.toContain("hash");
    expect(phases).not.toContain("hash output");
    expect(phases).not.toContain("verify");
    // The whole-file CRC-32 combined from the header's and the tensors' is zlib's over the file.
    if (zlibCrc32) expect(result.outputCrc32).toBe(zlibCrc32(onDisk) >>> 0);
  });

  it("reads ahead by pieces (tensors split, and a few packed into one): a tap that takes its time gets each piece's bytes unchanged until it is done with them, and the file is the default conversion's byte for byte", async () => {
    const { mkdir, readFile } = await import("node:fs/promises");
    const folder = join(dir, "read-ahead");
    await mkdir(folder);
    const input = join(folder, "in.ckpt");
    // Tensors larger than a page, so that each lies across where the one two groups before it lay.
    const sizes = [3000, 2500, 5000, 1000, 4500, 7, 6000, 2000];
    await writeTorchCheckpoint(input, sizes.map((n, k) => ({ name: `model.diffusion_model.t${k}.weight`, dtype: "F32", shape: [n], data: seededBytes(4 * n, 90 + k) })));
    const inputSha256 = createHash("sha256").update(readFileSync(input)).digest("hex");
    const reference = await readFile((await convertCheckpoint(input, { output: join(folder, "reference.safetensors"), inputSha256, prune: false })).output);
    for (const readAheadBytes of [1, 30000]) {
      const seen: Buffer[] = [];
      let changedWhileTaken = 0;
      const tap = {
        // Slower than the reads: a buffer read into again before the tap is done would show here.
        bytes: async (chunk: Uint8Array) => {
          const taken = Buffer.from(chunk);
          await new Promise((resolve) => setTimeout(resolve, 2));
          if (!taken.equals(chunk)) changedWhileTaken++;
          seen.push(taken);
        },
      };
      const result = await convertCheckpoint(input, { output: join(folder, `groups-${readAheadBytes}.safetensors`), inputSha256, outputTap: tap, prune: false, readAheadBytes });
      const onDisk = await readFile(result.output);
      expect(changedWhileTaken, `groups of ${readAheadBytes} bytes`).toBe(0);
      expect(Buffer.concat(seen).equals(onDisk), `groups of ${readAheadBytes} bytes`).toBe(true);
      expect(onDisk.equals(reference), `groups of ${readAheadBytes} bytes`).toBe(true);
    }
  });

  it("with the input hashed meanwhile, the tap still gets the final file in order (the part written before the header was known read back) and the CRC-32 is zlib's", async () => {
    const { mkdir, readFile } = await import("node:fs/promises");
    const folder = join(dir, "header-last");
    await mkdir(folder);
    for (const [name, precision] of [["sd_lightning.ckpt", "keep"], ["views_legacy.pt", "fp16"]] as const) {
      const input = join(folder, name);
      await copyFile(join(FIXTURES, name), input);
      const outputHash = createHash("sha256");
      let fed = 0;
      const tap = {
        bytes: (chunk: Uint8Array, offset: number) => {
          expect(offset).toBe(fed);
          fed += chunk.byteLength;
          outputHash.update(chunk);
        },
      };
      const result = await convertCheckpoint(input, { output: join(folder, `${name}.safetensors`), outputTap: tap, precision, prune: false });
      const onDisk = await readFile(result.output);
      expect(result.inputSha256).toBe(createHash("sha256").update(readFileSync(input)).digest("hex"));
      expect(fed).toBe(onDisk.byteLength);
      expect(outputHash.digest("hex")).toBe(createHash("sha256").update(onDisk).digest("hex"));
      if (zlibCrc32) expect(result.outputCrc32).toBe(zlibCrc32(onDisk) >>> 0);
    }
  });

  it("a zip storage whose bytes differ from the CRC-32 the checkpoint records is refused before the rename (torch.load would take it); no output is left", async () => {
    const { mkdir } = await import("node:fs/promises");
    const folder = join(dir, "recorded-crc");
    await mkdir(folder);
    const input = join(folder, "in.ckpt");
    const bytes = new Uint8Array(readFileSync(join(FIXTURES, "sd_lightning.ckpt")));
    // Flip one byte inside a stored tensor's data, found by its value as torch stored it.
    const opened = await openStateDict(join(FIXTURES, "sd_lightning.ckpt"));
    const name = opened.source.descriptors.find((d) => d.byteLength >= 16 && opened.recordedCrc32(d.name) !== undefined)!.name;
    const data = await opened.source.read(name);
    await opened.close();
    const at = Buffer.from(bytes).indexOf(Buffer.from(data));
    expect(at).toBeGreaterThan(0);
    bytes[at + 5] = bytes[at + 5]! ^ 0xff;
    writeFileSync(input, bytes);
    const inputSha256 = createHash("sha256").update(bytes).digest("hex");
    // Whole, and in pieces of at most a block (the tensor's CRC-32 then combined from its pieces').
    for (const options of [{}, { inputSha256 }, { inputSha256, readAheadBytes: 1 }]) {
      await expect(convertCheckpoint(input, { output: join(folder, "out.safetensors"), prune: false, ...options })).rejects.toMatchObject({
        code: "CONVERT_VERIFY_FAILED",
        message: expect.stringContaining(`tensor ${JSON.stringify(name)} has different bytes from the CRC-32 its checkpoint records`),
      });
      expect(await readdir(folder)).toEqual(["in.ckpt"]);
    }
  });

  it("a tensor with no recorded CRC-32 (a legacy file) is read back after its write: a byte changed on disk then is caught and no output is left", async () => {
    const { mkdir, open: openFile } = await import("node:fs/promises");
    const folder = join(dir, "read-back");
    await mkdir(folder);
    const input = join(folder, "in.ckpt");
    await copyFile(join(FIXTURES, "views_legacy.pt"), input);
    const inputSha256 = createHash("sha256").update(readFileSync(input)).digest("hex");
    let flipped = false;
    const tap = {
      // Fed alongside each write (the header is final): on the first tensor, wait until its bytes
      // are on disk, then flip one; the read-back that follows the write must see it.
      bytes: async (chunk: Uint8Array, offset: number) => {
        if (flipped || offset === 0 || chunk.byteLength === 0) return;
        flipped = true;
        const temp = (await readdir(folder)).find((n) => n !== "in.ckpt");
        const handle = await openFile(join(folder, temp!), "r+");
        try {
          const byte = new Uint8Array(1);
          for (let tries = 0; tries < 1000; tries++) {
            await handle.read(byte, 0, 1, offset);
            if (byte[0] === chunk[0]) break;
            await new Promise((r) => setTimeout(r, 1));
          }
          byte[0] = chunk[0]! ^ 0xff;
          await handle.write(byte, 0, 1, offset);
        } finally {
          await handle.close();
        }
      },
    };
    await expect(convertCheckpoint(input, { output: join(folder, "out.safetensors"), inputSha256, outputTap: tap, prune: false })).rejects.toMatchObject({
      code: "CONVERT_VERIFY_FAILED",
      message: expect.stringMatching(/has different bytes/),
    });
    expect(flipped).toBe(true);
    expect(await readdir(folder)).toEqual(["in.ckpt"]);
  });

  it("each run checks its own bytes before the rename: both succeed, the output is one run's complete file, no temp files left", async () => {
    const { mkdir } = await import("node:fs/promises");
    const folder = join(dir, "two-writers");
    await mkdir(folder);
    const input = join(folder, "in.ckpt");
    await copyFile(join(FIXTURES, "sd_lightning.ckpt"), input);
    const output = join(folder, "out.safetensors");
    for (let round = 0; round < 3; round++) {
      // Different precisions, so the two runs' files differ and a check reading the other's file would fail.
      const results = await Promise.allSettled([
        convertCheckpoint(input, { output, overwrite: true, precision: "fp16" }),
        convertCheckpoint(input, { output, overwrite: true, precision: "fp32" }),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
      const out = await openSafetensors(output);
      try {
        expect(["fp16", "fp32"]).toContain(out.metadata["stmerge.precision"]);
        const winner = results.find((r) => r.status === "fulfilled" && r.value.precision === out.metadata["stmerge.precision"]);
        expect(winner?.status === "fulfilled" && out.fileSize).toBe(winner?.status === "fulfilled" && winner.value.outputBytes);
        for (const d of out.descriptors) expect((await out.read(d.name)).byteLength).toBe(d.byteLength);
      } finally {
        await out.close();
      }
      expect((await readdir(folder)).sort()).toEqual(["in.ckpt", "out.safetensors"]);
    }
  });
});
