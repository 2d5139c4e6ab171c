import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderCheckingTap, seededBytes } from "@stmerge/test-utils";
import { takesODirect, tempDir } from "../test/safetensors-test-helpers.js";
import { DTYPES, DTYPE_SIZE, shapeElementCount, type DType } from "./dtypes.js";
import { openSafetensors } from "./open-safetensors.js";
import { createSafetensorsWriter, planSafetensorsLayout, writeSafetensors, type InMemoryTensor } from "./safetensors-writer.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

function pattern(byteLength: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: byteLength }, (_, i) => (i * 31 + seed * 7) & 0xff);
}

function tensor(name: string, dtype: DType, shape: number[], seed = 1): InMemoryTensor {
  return { name, dtype, shape, data: pattern(shapeElementCount(shape) * DTYPE_SIZE[dtype], seed) };
}

async function roundTrip(name: string, tensors: InMemoryTensor[], metadata: Record<string, string> = {}) {
  const path = join(dir, name);
  await writeSafetensors(path, tensors, metadata);
  const source = await openSafetensors(path);
  try {
    expect({ ...source.metadata }).toEqual(metadata);
    expect(source.descriptors.map((d) => [d.name, d.dtype, d.shape])).toEqual(tensors.map((t) => [t.name, t.dtype, t.shape]));
    for (const t of tensors) expect(await source.read(t.name), t.name).toEqual(t.data);
    return source.header;
  } finally {
    await source.close();
  }
}

async function leftovers(): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith(".tmp"));
}

describe("safetensors writer round trips", () => {
  it("every dtype", async () => {
    await roundTrip(
      "all.safetensors",
      DTYPES.map((dtype, i) => tensor(`t_${dtype}`, dtype, [2, 3], i)),
    );
  });

  it("0-d and empty tensors, unusual names", async () => {
    await roundTrip("shapes.safetensors", [tensor("scalar", "F32", []), tensor("empty", "F16", [0]), tensor("empty2", "BF16", [3, 0, 2]), tensor("0", "U8", [1]), tensor("名前 with space", "I8", [5])]);
  });

  it("metadata, including unicode and JSON-looking strings", async () => {
    await roundTrip("meta.safetensors", [tensor("w", "F32", [4])], { format: "pt", "ss_tag": '{"a": 1}', note: "ünïcödé\n" });
  });

  it("no tensors at all", async () => {
    const header = await roundTrip("none.safetensors", []);
    expect(header.tensors).toEqual([]);
  });

  it("pads the header with spaces so data starts 8-aligned, for any header length", async () => {
    for (let n = 1; n <= 9; n++) {
      const layout = planSafetensorsLayout([{ name: "x".repeat(n), dtype: "U8", shape: [1], byteLength: 1 }]);
      expect(layout.dataStart % 8).toBe(0);
      const text = new TextDecoder().decode(layout.headerBytes.subarray(8));
      expect(text.trimEnd()).toBe(JSON.stringify({ ["x".repeat(n)]: { dtype: "U8", shape: [1], data_offsets: [0, 1] } }));
      expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
      expect(Number(new DataView(layout.headerBytes.buffer).getBigUint64(0, true))).toBe(layout.headerBytes.byteLength - 8);
    }
  });

  it("a big header (thousands of tensors, long metadata)", async () => {
    const tensors = Array.from({ length: 3000 }, (_, i) => tensor(`model.diffusion_model.block.${i}.weight`, "F16", [2], i));
    const header = await roundTrip("big.safetensors", tensors, { long: "y".repeat(100_000) });
    expect(header.headerLength).toBeGreaterThan(200_000);
    expect(header.dataStart % 8).toBe(0);
  });

  it("streams chunks and tensors in any order", async () => {
    const path = join(dir, "stream.safetensors");
    const a = pattern(100, 1);
    const b = pattern(60, 2);
    const sink = createSafetensorsWriter(path);
    await sink.begin([
      { name: "a", dtype: "U8", shape: [100], byteLength: 100 },
      { name: "b", dtype: "F32", shape: [15], byteLength: 60 },
    ]);
    await sink.write("b", b);
    await sink.write("a", a.subarray(50), 50);
    await sink.write("a", a.subarray(0, 50), 0);
    await sink.commit();
    const source = await openSafetensors(path);
    expect(await source.read("a")).toEqual(a);
    expect(await source.read("b")).toEqual(b);
    await source.close();
    expect(await leftovers()).toEqual([]);
  });
});

describe("safetensors writer safety", () => {
  it("refuses to replace an existing file unless asked", async () => {
    const path = join(dir, "exists.safetensors");
    await writeFile(path, "keep me");
    await expect(writeSafetensors(path, [tensor("w", "U8", [1])])).rejects.toMatchObject({ code: "OUTPUT_EXISTS", file: path });
    expect(await readFile(path, "utf8")).toBe("keep me");
    await writeSafetensors(path, [tensor("w", "U8", [1])], {}, { overwrite: true });
    const written = await openSafetensors(path);
    expect(written.descriptors).toHaveLength(1);
    await written.close();
    expect(await leftovers()).toEqual([]);
  });

  it("refuses a file that appeared while writing", async () => {
    const path = join(dir, "race.safetensors");
    const sink = createSafetensorsWriter(path);
    await sink.begin([{ name: "w", dtype: "U8", shape: [1], byteLength: 1 }]);
    await sink.write("w", new Uint8Array([1]));
    await writeFile(path, "other");
    await expect(sink.commit()).rejects.toMatchObject({ code: "OUTPUT_EXISTS" });
    expect(await readFile(path, "utf8")).toBe("other");
    expect(await leftovers()).toEqual([]);
  });

  it("abort removes the temp file and leaves nothing at the target", async () => {
    const path = join(dir, "aborted.safetensors");
    const sink = createSafetensorsWriter(path);
    await sink.begin([{ name: "w", dtype: "U8", shape: [4], byteLength: 4 }]);
    expect((await leftovers()).length).toBe(1);
    await sink.write("w", new Uint8Array([1, 2]));
    await sink.abort();
    await sink.abort();
    expect(await leftovers()).toEqual([]);
    expect((await readdir(dir)).includes("aborted.safetensors")).toBe(false);
  });

  it("refuses to commit an incomplete file and discards it", async () => {
    const path = join(dir, "incomplete.safetensors");
    const sink = createSafetensorsWriter(path);
    await sink.begin([
      { name: "a", dtype: "U8", shape: [4], byteLength: 4 },
      { name: "b", dtype: "U8", shape: [4], byteLength: 4 },
    ]);
    await sink.write("a", new Uint8Array(4));
    await expect(sink.commit()).rejects.toMatchObject({ code: "SINK_INCOMPLETE", message: `${path}: tensor "b" got 0 of 4 bytes; output discarded` });
    expect(await leftovers()).toEqual([]);
    expect((await readdir(dir)).includes("incomplete.safetensors")).toBe(false);
  });

  it("rejects misuse with typed errors", async () => {
    const path = join(dir, "misuse.safetensors");
    const sink = createSafetensorsWriter(path);
    await expect(sink.write("a", new Uint8Array(1))).rejects.toMatchObject({ code: "SINK_NOT_READY" });
    await expect(sink.commit()).rejects.toMatchObject({ code: "SINK_NOT_READY" });
    await sink.begin([{ name: "a", dtype: "U8", shape: [2], byteLength: 2 }]);
    await expect(sink.begin([])).rejects.toMatchObject({ code: "SINK_ALREADY_BEGUN" });
    await expect(sink.write("zzz", new Uint8Array(1))).rejects.toMatchObject({ code: "TENSOR_NOT_FOUND" });
    await expect(sink.write("a", new Uint8Array(3))).rejects.toMatchObject({ code: "RANGE_OUT_OF_BOUNDS" });
    await sink.abort();
    expect(await leftovers()).toEqual([]);
  });

  it("validates descriptors before creating anything", () => {
    expect(() => planSafetensorsLayout([{ name: "a", dtype: "F32", shape: [2], byteLength: 4 }])).toThrow(expect.objectContaining({ code: "SAFETENSORS_SIZE_MISMATCH" }));
    expect(() => planSafetensorsLayout([{ name: "a", dtype: "U8", shape: [1], byteLength: 1 }, { name: "a", dtype: "U8", shape: [1], byteLength: 1 }])).toThrow(expect.objectContaining({ code: "SAFETENSORS_DUPLICATE_NAME" }));
    expect(() => planSafetensorsLayout([{ name: "__metadata__", dtype: "U8", shape: [1], byteLength: 1 }])).toThrow(expect.objectContaining({ code: "SAFETENSORS_BAD_ENTRY" }));
    expect(() => planSafetensorsLayout([{ name: "a", dtype: "F9" as DType, shape: [1], byteLength: 1 }])).toThrow(expect.objectContaining({ code: "SAFETENSORS_UNKNOWN_DTYPE" }));
    expect(() => planSafetensorsLayout([], { a: 1 as unknown as string })).toThrow(expect.objectContaining({ code: "SAFETENSORS_BAD_METADATA" }));
    expect(() => planSafetensorsLayout([{ name: "a", dtype: "U16", shape: [1.5], byteLength: 3 }])).toThrow(expect.objectContaining({ code: "SAFETENSORS_BAD_SHAPE" }));
    expect(() => planSafetensorsLayout([{ name: "a", dtype: "U8", shape: [-2, -2], byteLength: 4 }])).toThrow(expect.objectContaining({ code: "SAFETENSORS_BAD_SHAPE" }));
  });

  it("reports an unwritable folder", async () => {
    const path = join(dir, "no-such-folder", "x.safetensors");
    await expect(writeSafetensors(path, [])).rejects.toMatchObject({ code: "OUTPUT_NOT_WRITABLE", file: path });
  });
});

describe("safetensors writer refuses names no reader accepts", () => {
  it("a lone UTF-16 surrogate in a tensor name or metadata is refused before any file is created", () => {
    const d = (name: string) => ({ name, dtype: "F32" as const, shape: [1], byteLength: 4 });
    expect(() => planSafetensorsLayout([d("model.\ud800weight")])).toThrow(expect.objectContaining({ code: "SAFETENSORS_BAD_NAME" }));
    expect(() => planSafetensorsLayout([d("a\udc00")])).toThrow(expect.objectContaining({ code: "SAFETENSORS_BAD_NAME" }));
    expect(() => planSafetensorsLayout([d("a")], { "k\ud83d": "v" })).toThrow(expect.objectContaining({ code: "SAFETENSORS_BAD_METADATA" }));
    expect(() => planSafetensorsLayout([d("emoji 🙂 ok")], { k: "🙂" })).not.toThrow();
  });

  it("writeSafetensors leaves no file behind for such a name", async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await expect(writeSafetensors(join(dir, "x.safetensors"), [{ name: "bad\ud800", dtype: "F32", shape: [1], data: new Uint8Array(4) }])).rejects.toMatchObject({ code: "SAFETENSORS_BAD_NAME" });
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await cleanup();
    }
  });
});

describe("safetensors writer with metadata known only at the end (finalMetadata)", () => {
  const descriptors = [
    { name: "b", dtype: "F16" as const, shape: [3, 5], byteLength: 30 },
    { name: "a", dtype: "U8" as const, shape: [7], byteLength: 7 },
  ];
  const PLACEHOLDER = "0".repeat(64);
  const REAL = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

  async function writeWithFinal(name: string, final: Record<string, string>, options: { signal?: AbortSignal } = {}) {
    const path = join(dir, name);
    const seen: { size?: number; chunks: Buffer[]; offsets: number[] } = { chunks: [], offsets: [] };
    const progress: number[] = [];
    const sink = createSafetensorsWriter(path, {
      finalMetadata: async () => final,
      tap: { start: ({ size }) => void (seen.size = size), bytes: (chunk, offset) => void (seen.chunks.push(Buffer.from(chunk)), seen.offsets.push(offset)) },
      onProgress: (e) => progress.push(e.bytesDone),
      ...options,
    });
    await sink.begin(descriptors, { input_sha256: PLACEHOLDER, note: "kept" });
    await sink.write("a", pattern(7, 2));
    await sink.write("b", pattern(30, 3));
    // Nothing reaches the tap while the header is still provisional.
    expect(seen.chunks).toEqual([]);
    await sink.commit();
    return { path, seen, progress, reserved: planSafetensorsLayout(descriptors, { input_sha256: PLACEHOLDER, note: "kept" }) };
  }

  it("writes the final header over the reserved one, tensors unmoved, and the tap sees the finished file", async () => {
    const { path, seen, progress, reserved } = await writeWithFinal("final.safetensors", { input_sha256: REAL, note: "kept" });
    const file = new Uint8Array(await readFile(path));
    expect(file.byteLength).toBe(reserved.totalSize);
    const source = await openSafetensors(path);
    try {
      expect({ ...source.metadata }).toEqual({ input_sha256: REAL, note: "kept" });
      expect(source.header.dataStart).toBe(reserved.dataStart);
      expect(await source.read("a")).toEqual(pattern(7, 2));
      expect(await source.read("b")).toEqual(pattern(30, 3));
    } finally {
      await source.close();
    }
    // The tap saw every byte in order: its digest is the digest of the file as it lies on disk.
    expect(seen.size).toBe(file.byteLength);
    expect(seen.offsets[0]).toBe(0);
    expect(sha256(Buffer.concat(seen.chunks))).toBe(sha256(file));
    expect(progress.at(-1)).toBe(file.byteLength);
    expect(await leftovers()).toEqual([]);
  });

  it("reads back a file of several 16 MiB chunks in order (the next read while the tap takes one), the tap never holding a chunk past its promise", async () => {
    const path = join(dir, "final-large.safetensors");
    const big = [{ name: "w", dtype: "U8" as const, shape: [40 * 2 ** 20 + 4321], byteLength: 40 * 2 ** 20 + 4321 }];
    const tap = orderCheckingTap(5);
    const sink = createSafetensorsWriter(path, { finalMetadata: async () => ({ input_sha256: REAL }), tap });
    await sink.begin(big, { input_sha256: PLACEHOLDER });
    await sink.write("w", seededBytes(big[0]!.byteLength, 7));
    await sink.commit();
    const file = new Uint8Array(await readFile(path));
    expect(tap.fed).toBe(file.byteLength);
    expect(tap.sha256()).toBe(sha256(file));
  });

  it("verify sees the finished temp file with the final layout before the rename; its throw leaves no output and no temp file; readWritten reads back what was written", async () => {
    for (const final of [undefined, { input_sha256: REAL, note: "kept" }]) {
      const path = join(dir, final ? "verified-final.safetensors" : "verified.safetensors");
      const seen: { head?: Buffer; dataStart?: number } = {};
      const make = (fail: boolean) =>
        createSafetensorsWriter(path, {
          ...(final ? { finalMetadata: async () => final } : {}),
          verify: async (handle, layout) => {
            const head = Buffer.alloc(layout.dataStart);
            await handle.read(head, 0, head.byteLength, 0);
            seen.head = head;
            seen.dataStart = layout.dataStart;
            if (fail) throw new Error("check failed");
          },
        });
      for (const fail of [true, false]) {
        const sink = make(fail);
        await sink.begin(descriptors, { input_sha256: PLACEHOLDER, note: "kept" });
        await sink.write("b", pattern(30, 3));
        const at = sink.layout!.dataStart + sink.layout!.offsets.get("b")!;
        expect(await sink.readWritten(new Uint8Array(30), at)).toEqual(pattern(30, 3));
        await sink.write("a", pattern(7, 2));
        if (fail) {
          await expect(sink.commit()).rejects.toThrow("check failed");
          expect(await leftovers()).toEqual([]);
          expect(existsSync(path)).toBe(false);
        } else await sink.commit();
      }
      const file = await readFile(path);
      // What verify read is the final header, as it lies in the committed file.
      expect(seen.head!.equals(file.subarray(0, seen.dataStart))).toBe(true);
      expect(JSON.parse(seen.head!.subarray(8).toString("utf8").trimEnd()).__metadata__).toEqual(final ?? { input_sha256: PLACEHOLDER, note: "kept" });
    }
  });

  it("pads a shorter final header with spaces up to the reserved data start", async () => {
    const { path, reserved } = await writeWithFinal("shorter.safetensors", { note: "kept" });
    const file = new Uint8Array(await readFile(path));
    const headerLength = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    expect(8 + headerLength).toBe(reserved.dataStart);
    const json = new TextDecoder().decode(file.subarray(8, 8 + headerLength));
    expect(json.trimEnd().length).toBeLessThan(json.length - 60);
    expect(JSON.parse(json).__metadata__).toEqual({ note: "kept" });
    const source = await openSafetensors(path);
    try {
      expect(await source.read("b")).toEqual(pattern(30, 3));
    } finally {
      await source.close();
    }
  });

  it("refuses a final header longer than the reserved one and leaves no file", async () => {
    await expect(writeWithFinal("longer.safetensors", { input_sha256: REAL, note: "kept", more: "x" })).rejects.toMatchObject({ code: "SAFETENSORS_HEADER_CHANGED" });
    expect((await readdir(dir)).includes("longer.safetensors")).toBe(false);
    expect(await leftovers()).toEqual([]);
  });

  it("an abort during the read-back removes the temp file", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(writeWithFinal("interrupted.safetensors", { input_sha256: REAL, note: "kept" }, { signal: controller.signal })).rejects.toMatchObject({ code: "ABORTED" });
    expect((await readdir(dir)).includes("interrupted.safetensors")).toBe(false);
    expect(await leftovers()).toEqual([]);
  });
});

describe("safetensors writer with direct writes (O_DIRECT, past the page cache)", () => {
  const MiB = 2 ** 20;
  const PLACEHOLDER = "0".repeat(64);
  const REAL = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
  // 11 MiB and odd sizes in all: several staging buffers, tensors that straddle them, a partial last block.
  const tensors = [5 * MiB + 3, 1, 4096, 6 * MiB + 777, 12345].map((n, i) => ({ name: `t${i}`, dtype: "U8" as const, shape: [n], byteLength: n }));
  const data = tensors.map((t, i) => seededBytes(t.byteLength, i + 11));

  /** Writes the tensors (each in `pieces` chunks), in `order`; calls `between` after the i-th write. */
  async function writeDirect(name: string, options: Parameters<typeof createSafetensorsWriter>[1] = {}, order = [0, 1, 2, 3, 4], between?: (sink: ReturnType<typeof createSafetensorsWriter>, i: number) => Promise<void>) {
    const path = join(dir, name);
    const sink = createSafetensorsWriter(path, { directWrites: true, ...options });
    await sink.begin(tensors, { note: "direct" });
    for (const [i, k] of order.entries()) {
      const bytes = data[k]!;
      // Two chunks per tensor, issued together as the merge's executor does.
      const half = Math.floor(bytes.byteLength / 2);
      await Promise.all([sink.write(tensors[k]!.name, bytes.subarray(0, half), 0), sink.write(tensors[k]!.name, bytes.subarray(half), half)]);
      await between?.(sink, i);
    }
    await sink.commit();
    return { path, sink };
  }

  async function expectTensors(path: string): Promise<void> {
    const source = await openSafetensors(path);
    try {
      expect(source.metadata.note).toBe("direct");
      for (const [k, t] of tensors.entries()) expect(Buffer.from(await source.read(t.name)).equals(Buffer.from(data[k]!)), t.name).toBe(true);
    } finally {
      await source.close();
    }
  }

  it("gives the same file as the page cache, byte for byte, and writes past it where the filesystem allows", async () => {
    const { path, sink } = await writeDirect("direct.safetensors");
    const buffered = join(dir, "buffered.safetensors");
    const reference = createSafetensorsWriter(buffered, { directWrites: false });
    await reference.begin(tensors, { note: "direct" });
    for (const [k, t] of tensors.entries()) await reference.write(t.name, data[k]!);
    await reference.commit();
    expect(reference.wroteDirect).toBe(false);
    expect((await readFile(path)).equals(await readFile(buffered))).toBe(true);
    await expectTensors(path);
    // Where the temp folder's filesystem takes O_DIRECT (ext4 here), the writes went past the page cache.
    expect(sink.wroteDirect).toBe(await takesODirect(dir));
    expect(await leftovers()).toEqual([]);
  });

  it("a write out of file order ends direct writing; the rest goes through the page cache, the file intact", async () => {
    const direct: boolean[] = [];
    const { path } = await writeDirect("out-of-order.safetensors", {}, [0, 1, 3, 2, 4], async (sink) => void direct.push(sink.writingDirect));
    // Direct until t3 came before t2 (where the filesystem takes O_DIRECT).
    expect(direct).toEqual((await takesODirect(dir)) ? [true, true, false, false, false] : [false, false, false, false, false]);
    await expectTensors(path);
  });

  it("readWritten in the middle sees what was written (the staged bytes first go to the file), two at once included", async () => {
    const layout: number[] = [];
    const { path } = await writeDirect("read-back.safetensors", {}, undefined, async (sink, i) => {
      if (i !== 1) return;
      const at = sink.layout!.dataStart;
      // Both wait for the staged bytes: the second call must not read while the first one's flush runs.
      const [first, second] = await Promise.all([sink.readWritten(new Uint8Array(data[0]!.byteLength), at), sink.readWritten(new Uint8Array(data[1]!.byteLength), at + data[0]!.byteLength)]);
      layout.push(at);
      expect(Buffer.from(first).equals(Buffer.from(data[0]!))).toBe(true);
      expect(Buffer.from(second).equals(Buffer.from(data[1]!))).toBe(true);
    });
    expect(layout).toHaveLength(1);
    await expectTensors(path);
  });

  it("direct writing goes on after readWritten: the writes after it go past the page cache too", async () => {
    const direct = await takesODirect(dir);
    const reads: [equal: boolean, stillDirect: boolean][] = [];
    const { path, sink } = await writeDirect("read-back-direct.safetensors", {}, undefined, async (sink, i) => {
      const back = await sink.readWritten(new Uint8Array(data[i]!.byteLength), sink.fileOffsetOf("t" + i, 0)!);
      reads.push([Buffer.from(back).equals(Buffer.from(data[i]!)), sink.writingDirect]);
    });
    expect(reads).toEqual(Array.from({ length: 5 }, () => [true, direct]));
    expect(sink.wroteDirect).toBe(direct);
    await expectTensors(path);
  });

  it("with the header known only at the end: it is written over the reserved one after the direct writes, and the tap sees the finished file", async () => {
    const tap = orderCheckingTap(1);
    const path = join(dir, "direct-final.safetensors");
    const sink = createSafetensorsWriter(path, { directWrites: true, finalMetadata: async () => ({ note: "direct", input_sha256: REAL }), tap });
    await sink.begin(tensors, { note: "direct", input_sha256: PLACEHOLDER });
    for (const [k, t] of tensors.entries()) await sink.write(t.name, data[k]!);
    await sink.commit();
    const file = await readFile(path);
    expect(tap.sha256()).toBe(sha256(file));
    const source = await openSafetensors(path);
    try {
      expect(source.metadata.input_sha256).toBe(REAL);
      expect(Buffer.from(await source.read("t3")).equals(Buffer.from(data[3]!))).toBe(true);
    } finally {
      await source.close();
    }
  });

  it("an abort with direct writes in flight leaves no temp file", async () => {
    const path = join(dir, "direct-abort.safetensors");
    const sink = createSafetensorsWriter(path, { directWrites: true });
    await sink.begin(tensors);
    await sink.write("t0", data[0]!);
    await sink.abort();
    expect(existsSync(path)).toBe(false);
    expect(await leftovers()).toEqual([]);
  });

  it("by default (auto), a small file is written through the page cache", async () => {
    const path = join(dir, "auto-small.safetensors");
    const sink = createSafetensorsWriter(path);
    await sink.begin([{ name: "w", dtype: "U8", shape: [100], byteLength: 100 }]);
    await sink.write("w", seededBytes(100, 1));
    await sink.commit();
    expect(sink.wroteDirect).toBe(false);
  });
});

