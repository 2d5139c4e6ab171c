import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "@stmerge/core-tensors";
import { writeMixedDtypeModel } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

let dir: string;
let model: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-inspect-"));
  model = join(dir, "model.safetensors");
  await writeMixedDtypeModel(model);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stmerge inspect", () => {
  it("summarizes tensors, dtypes, parameters and metadata", async () => {
    const io = memoryIo();
    expect(await runCli(["inspect", model], io)).toBe(0);
    const out = io.out();
    expect(out).toContain("tensors     3");
    expect(out).toContain("parameters  19");
    expect(out).toContain("F16 ×1");
    expect(out).toContain("I64 ×1");
    expect(out).toContain("modelspec.title: tiny test model");
    expect(out).toContain("model.diffusion_model.out.2.weight");
    // The summary closes the output as a panel: what was read, that nothing was written, the time.
    const lines = out.trimEnd().split("\n");
    expect(lines.at(-1)).toMatch(/^╰─+╯$/);
    expect(lines).toContainEqual(expect.stringMatching(/^╭─ ✔ \S+\.safetensors ─+╮$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ read +the header only; wrote nothing +│$/));
    expect(lines).toContainEqual(expect.stringMatching(/^│ time +\d+ ms +│$/));
  });

  it("reports the detected architecture (SDXL from attn2.to_k width 2048) and the file kind", async () => {
    const sdxl = join(dir, "sdxl.safetensors");
    await writeSafetensors(sdxl, [
      { name: "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", dtype: "F16", shape: [2, 2048], data: new Uint8Array(8192) },
      { name: "conditioner.embedders.1.model.ln_final.weight", dtype: "F16", shape: [4], data: new Uint8Array(8) },
    ]);
    const io = memoryIo();
    expect(await runCli(["inspect", sdxl], io)).toBe(0);
    expect(io.out()).toMatch(/kind {8}sd-checkpoint; SDXL/);
    const json = memoryIo();
    expect(await runCli(["inspect", sdxl, "--json"], json)).toBe(0);
    expect(JSON.parse(json.out())).toMatchObject({ kind: "sd-checkpoint", architecture: { id: "sdxl", label: "SDXL", variant: "standard" } });
  });

  it("prints JSON with --json", async () => {
    const io = memoryIo();
    expect(await runCli(["inspect", model, "--json", "-n", "1"], io)).toBe(0);
    const report = JSON.parse(io.out());
    expect(report.tensorCount).toBe(3);
    expect(report.parameterCount).toBe(19);
    expect(report.dtypes).toEqual({ F16: 1, I64: 1, F32: 1 });
    expect(report.keys).toHaveLength(1);
    expect(report.keys[0].name).toBe("cond_stage_model.transformer.text_model.embeddings.position_ids");
  });

  it("reports an invalid file with the reader's error code in one line, exit 1", async () => {
    const bad = join(dir, "bad.safetensors");
    const header = Buffer.from('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(bad, Buffer.concat([prefix, header, Buffer.alloc(4)]));
    const io = memoryIo();
    expect(await runCli(["inspect", bad], io)).toBe(1);
    expect(io.err().trim().split("\n")).toHaveLength(1);
    expect(io.err()).toContain("SAFETENSORS_SIZE_MISMATCH");
    expect(io.err()).toContain(bad);
  });

  it("recognizes a pickle checkpoint and points to convert/audit", async () => {
    const ckpt = join(dir, "old.ckpt");
    writeFileSync(ckpt, Buffer.concat([Buffer.from("PK\x03\x04"), Buffer.alloc(64)]));
    const io = memoryIo();
    expect(await runCli(["inspect", ckpt], io)).toBe(1);
    expect(io.err().trim()).toBe(`stmerge: ${ckpt}: not a safetensors file (looks like a zip archive, e.g. a PyTorch .ckpt/.pt checkpoint; \`stmerge convert\` turns one into safetensors) [NOT_SAFETENSORS]`);
  });

  it("names a missing file", async () => {
    const io = memoryIo();
    expect(await runCli(["inspect", join(dir, "nope.safetensors")], io)).toBe(1);
    expect(io.err()).toContain("nope.safetensors: no such file");
  });

  it("shows a stack only with --debug", async () => {
    const io = memoryIo();
    expect(await runCli(["--debug", "inspect", join(dir, "nope.safetensors")], io)).toBe(1);
    expect(io.err()).toContain("    at ");
  });
});

describe("stmerge inspect output is data, not control", () => {
  it("escapes control characters in the file name, tensor names and metadata", async () => {
    const hostile = join(dir, "evil\x1b]0;title\x07.safetensors");
    await writeSafetensors(hostile, [{ name: "x\r\x1b[2Kmodel.diffusion_model.ok", dtype: "F32", shape: [1], data: new Uint8Array(4) }], { "title\x1b[8m": "hidden\x9b2J\u202etxt.exe" });
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["inspect", hostile], io)).toBe(0);
    // eslint-disable-next-line no-control-regex
    expect(io.out()).not.toMatch(/[\r\x07\x1b\x9b\u202e]/);
    expect(io.out()).toContain("evil\\e]0;title\\x07.safetensors");
    expect(io.out()).toContain("x\\r\\e[2Kmodel.diffusion_model.ok");
    expect(io.out()).toContain("title\\e[8m: hidden\\x9b2J\\u202etxt.exe");
  });
});
