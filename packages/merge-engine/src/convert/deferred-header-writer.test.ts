import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSafetensors } from "@stmerge/core-tensors";
import { createDeferredHeaderWriter } from "./deferred-header-writer.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "deferred-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const descriptors = [
  { name: "a", dtype: "F32" as const, shape: [2], byteLength: 8 },
  { name: "b", dtype: "U8" as const, shape: [3], byteLength: 3 },
];

describe("createDeferredHeaderWriter", () => {
  it("writes tensors first and the final metadata last", async () => {
    const path = join(dir, "ok.safetensors");
    const writer = await createDeferredHeaderWriter(path, descriptors, { hash: "0".repeat(8) });
    await writer.write("b", Uint8Array.from([1, 2, 3]));
    await writer.write("a", new Uint8Array(new Float32Array([1.5, -2]).buffer));
    await writer.finish({ hash: "deadbeef" });
    const source = await openSafetensors(path);
    expect(source.metadata).toEqual({ hash: "deadbeef" });
    expect([...(await source.read("b"))]).toEqual([1, 2, 3]);
    await source.close();
  });

  it("refuses metadata that changes the layout, and incomplete output; nothing is left behind", async () => {
    const path = join(dir, "bad.safetensors");
    const writer = await createDeferredHeaderWriter(path, descriptors, { hash: "0" });
    await writer.write("a", new Uint8Array(8));
    await writer.write("b", new Uint8Array(3));
    await expect(writer.finish({ hash: "much longer" })).rejects.toMatchObject({ code: "SAFETENSORS_HEADER_CHANGED" });
    const partial = await createDeferredHeaderWriter(path, descriptors, {});
    await partial.write("a", new Uint8Array(8));
    await expect(partial.finish({})).rejects.toMatchObject({ code: "SINK_INCOMPLETE" });
    const wrong = await createDeferredHeaderWriter(path, descriptors, {});
    await expect(wrong.write("a", new Uint8Array(7))).rejects.toMatchObject({ code: "SINK_BAD_WRITE" });
    expect((await readdir(dir)).filter((f) => f.includes("bad"))).toEqual([]);
  });
});
