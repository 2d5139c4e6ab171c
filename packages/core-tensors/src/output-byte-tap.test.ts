import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { orderedTap, type OutputByteTap } from "./output-byte-tap.js";
import { createSafetensorsWriter } from "./safetensors-writer.js";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

function collectingTap(): OutputByteTap & { data(): Uint8Array; size: number | undefined } {
  const chunks: Uint8Array[] = [];
  let expectOffset = 0;
  const tap = {
    size: undefined as number | undefined,
    start(file: { size: number; head: Uint8Array }) {
      tap.size = file.size;
    },
    bytes(chunk: Uint8Array, offset: number) {
      expect(offset).toBe(expectOffset);
      expectOffset += chunk.byteLength;
      chunks.push(chunk.slice());
    },
    data: () => Buffer.concat(chunks),
  };
  return tap;
}

const filled = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe("the safetensors writer's tap", () => {
  it("sees exactly the bytes of the file on disk, in file order, even when tensors are written out of order and in chunks", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stmerge-tap-"));
    dirs.push(dir);
    const path = join(dir, "out.safetensors");
    const tap = collectingTap();
    const writer = createSafetensorsWriter(path, { tap });
    const a = filled(4000, 1);
    const b = filled(1000, 2);
    const c = filled(2048, 3);
    await writer.begin([
      { name: "a", dtype: "F32", shape: [1000], byteLength: 4000 },
      { name: "b", dtype: "U8", shape: [1000], byteLength: 1000 },
      { name: "c", dtype: "F16", shape: [1024], byteLength: 2048 },
    ], { note: "x" });
    await writer.write("c", c.subarray(1024), 1024);
    await writer.write("b", b);
    await writer.write("a", a.subarray(0, 1000), 0);
    await writer.write("a", a.subarray(1000), 1000);
    await writer.write("c", c.subarray(0, 1024), 0);
    await writer.commit();
    const onDisk = new Uint8Array(await readFile(path));
    expect(tap.size).toBe(onDisk.byteLength);
    expect(Buffer.from(tap.data()).equals(Buffer.from(onDisk))).toBe(true);
  });
});

describe("orderedTap", () => {
  it("passes in-order chunks through without copying and reports completeness", () => {
    const seen: Uint8Array[] = [];
    const t = orderedTap({ bytes: (chunk) => void seen.push(chunk) });
    const first = new Uint8Array(10);
    t.write(first, 0);
    t.write(new Uint8Array(5), 10);
    expect(seen[0]).toBe(first);
    expect(t.complete(15)).toBe(true);
    expect(t.complete(16)).toBe(false);
  });

  it("gives up, instead of holding unbounded memory, when chunks run too far ahead", () => {
    const seen: number[] = [];
    const t = orderedTap({ bytes: (_chunk, offset) => void seen.push(offset) }, 100);
    t.write(new Uint8Array(60), 40);
    t.write(new Uint8Array(60), 100); // 120 bytes held > 100
    t.write(new Uint8Array(40), 0);
    expect(seen).toEqual([]);
    expect(t.complete(160)).toBe(false);
  });

  it("gives up on overlapping writes (bytes rewritten in place cannot be hashed in passing)", () => {
    const t = orderedTap({ bytes: () => undefined });
    t.write(new Uint8Array(10), 0);
    t.write(new Uint8Array(10), 5);
    expect(t.complete(15)).toBe(false);
  });
});
