import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../test/safetensors-test-helpers.js";
import { openSafetensors } from "./open-safetensors.js";
import { createSafetensorsWriter } from "./safetensors-writer.js";

// Multi-GB models put tensors beyond 2^32 bytes. A sparse 5 GiB file (no disk used for the
// holes) checks that offsets never pass through 32-bit arithmetic in the writer or the reader.
const GiB = 1024 ** 3;

describe("tensors beyond 4 GiB (sparse files)", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());

  it("writes and reads ranges at offsets above 2^32", async () => {
    const path = join(dir, "huge.safetensors");
    const big = 5 * GiB;
    const sink = createSafetensorsWriter(path);
    await sink.begin([
      { name: "huge", dtype: "U8", shape: [big], byteLength: big },
      { name: "tail", dtype: "F32", shape: [4], byteLength: 16 },
    ]);
    // Positioned writes above 4 GiB work; writing all 5 GiB would be too slow for a unit test,
    // so the sink (which counts bytes) rightly refuses to commit.
    await sink.write("huge", new Uint8Array([1, 2, 3]), 0);
    await sink.write("huge", new Uint8Array([7, 8, 9]), big - 3);
    await sink.write("tail", new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
    await expect(sink.commit()).rejects.toMatchObject({ code: "SINK_INCOMPLETE" });

    // The same layout built by hand as a sparse file: header from the writer's plan.
    const sink2 = createSafetensorsWriter(path);
    await sink2.begin([
      { name: "huge", dtype: "U8", shape: [big], byteLength: big },
      { name: "tail", dtype: "F32", shape: [4], byteLength: 16 },
    ]);
    const layout = sink2.layout!;
    expect(layout.totalSize).toBe(layout.dataStart + big + 16);
    await sink2.abort();
    const handle = await open(path, "w");
    await handle.write(layout.headerBytes, 0, layout.headerBytes.byteLength, 0);
    await handle.truncate(layout.totalSize);
    await handle.write(new Uint8Array([7, 8, 9]), 0, 3, layout.dataStart + big - 3);
    await handle.write(new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer), 0, 16, layout.dataStart + big);
    await handle.close();
    expect((await stat(path)).size).toBe(layout.totalSize);

    const source = await openSafetensors(path);
    expect(source.fileOffsetOf("tail")).toBeGreaterThan(2 ** 32);
    expect(Array.from(await source.readRange("huge", big - 4, big))).toEqual([0, 7, 8, 9]);
    expect(Array.from(new Float32Array((await source.read("tail")).slice().buffer))).toEqual([1, 2, 3, 4]);
    await source.close();
  });
});
