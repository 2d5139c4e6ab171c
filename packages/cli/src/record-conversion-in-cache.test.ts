import { createHash } from "node:crypto";
import { readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { convertCheckpoint } from "@stmerge/merge-engine";
import { describe, expect, it } from "vitest";
import { openCliCache } from "./cli-cache.js";
import { memoryIo } from "./cli-io.js";
import { recordConversionInCache } from "./record-conversion-in-cache.js";
import { useTorchFixtureDir } from "../test/torch-fixture-dir.js";

const fixtures = useTorchFixtureDir("stmerge-record-conversion-");
// The reference: node:crypto over the whole file.
const sha256Of = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const noWarnings = (text: string) => expect.fail(`unexpected warning: ${text}`);

/** Converts a staged checkpoint, then changes the input in place (same size, new bytes, later mtime) before it is recorded. */
async function convertThenChange(name: string) {
  const input = fixtures.stage("sd_lightning.ckpt", `${name}.ckpt`);
  const result = await convertCheckpoint(input, { output: join(fixtures.dir(), `${name}.safetensors`) });
  const hashed = sha256Of(input);
  const bytes = readFileSync(input);
  bytes.writeUInt8(bytes.readUInt8(bytes.byteLength - 1) ^ 0xff, bytes.byteLength - 1);
  writeFileSync(input, bytes);
  utimesSync(input, new Date(), new Date(statSync(input).mtimeMs + 5000));
  return { input, result, hashed };
}

describe("recordConversionInCache", () => {
  it("records the input under the size and mtime it was hashed for, so an input changed before the record is not fresh with the old hash", async () => {
    const io = memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: join(fixtures.dir(), "single.json") } });
    const { input, result, hashed } = await convertThenChange("single");
    expect(result.inputSha256).toBe(hashed);
    await recordConversionInCache(result, io, { warn: noWarnings });
    const cache = openCliCache(io, {}, noWarnings);
    const found = await cache.lookup(input);
    expect(found.status).toBe("stale");
    expect(found.entry?.sha256).toBe(hashed);
    // The output is recorded as usual, with the source's SHA-256.
    const output = await cache.lookup(result.output);
    expect(output.status).toBe("fresh");
    expect(output.entry).toMatchObject({ sha256: sha256Of(result.output), source_sha256: hashed });
  });

  it("through a batch's recorder too (convert-batch)", async () => {
    const io = memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: join(fixtures.dir(), "batch.json") } });
    const { input, result } = await convertThenChange("batch");
    const recorder = await openCliCache(io, {}, noWarnings).recorder();
    await recordConversionInCache(result, io, { warn: noWarnings, recorder, outputHashes: { sha256: sha256Of(result.output) } });
    await recorder.flush();
    expect((await openCliCache(io, {}, noWarnings).lookup(input)).status).toBe("stale");
  });

  it("an unchanged input is fresh with its SHA-256; one whose SHA-256 came from the cache is not recorded again", async () => {
    const io = memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: join(fixtures.dir(), "unchanged.json") } });
    const input = fixtures.stage("sd_lightning.ckpt", "unchanged.ckpt");
    const result = await convertCheckpoint(input, { output: join(fixtures.dir(), "unchanged.safetensors") });
    await recordConversionInCache(result, io, { warn: noWarnings });
    const found = await openCliCache(io, {}, noWarnings).lookup(input);
    expect([found.status, found.entry?.sha256]).toEqual(["fresh", sha256Of(input)]);

    const other = memoryIo({ cwd: fixtures.dir(), env: { STMERGE_CACHE: join(fixtures.dir(), "known.json") } });
    const known = await convertCheckpoint(input, { output: join(fixtures.dir(), "known.safetensors"), inputSha256: sha256Of(input) });
    await recordConversionInCache(known, other, { warn: noWarnings });
    expect((await openCliCache(other, {}, noWarnings).lookup(input)).status).not.toBe("fresh");
    expect((await openCliCache(other, {}, noWarnings).lookup(known.output)).status).toBe("fresh");
  });
});
