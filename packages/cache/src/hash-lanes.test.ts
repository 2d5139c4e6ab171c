import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { assignLanes, LaneFeeder, startHashLanes } from "./hash-lanes.js";
import type { RangeHasherSpec } from "./range-hashers.js";

const GiB = 2 ** 30;
const six: RangeHasherSpec[] = [
  { id: "sha256", kind: "sha256", start: 0, end: 2 * GiB },
  { id: "autov1", kind: "sha256", start: 0x100000, end: 0x110000 },
  { id: "autov3", kind: "sha256", start: 4104, end: 2 * GiB },
  { id: "crc32", kind: "crc32", start: 0, end: 2 * GiB },
  { id: "blake3", kind: "blake3", start: 0, end: 2 * GiB },
];
const ids = (lanes: RangeHasherSpec[][]) => lanes.map((l) => l.map((s) => s.id).sort());

describe("assignLanes", () => {
  it("two lanes: each carries one full SHA-256, and the cheaper digests go where they even the load", () => {
    const lanes = assignLanes(six, 2, "native");
    expect(lanes.map((l) => l.filter((s) => s.id === "sha256" || s.id === "autov3"))).toEqual([[expect.anything()], [expect.anything()]]);
    expect(ids(lanes).flat().sort()).toEqual(["autov1", "autov3", "blake3", "crc32", "sha256"]);
    // BLAKE3 costs more than CRC-32 (with either CRC-32), so they are not on one lane.
    expect(lanes.every((l) => !(l.some((s) => s.id === "blake3") && l.some((s) => s.id === "crc32")))).toBe(true);
  });
  it("four lanes: the two SHA-256s, CRC32 and BLAKE3 each get their own", () => {
    const lanes = assignLanes(six, 4, "native");
    expect(lanes).toHaveLength(4);
    expect(lanes.every((l) => l.filter((s) => s.end - s.start > GiB).length === 1)).toBe(true);
  });
  it("never more lanes than digests, and one lane takes everything", () => {
    expect(assignLanes(six.slice(0, 2), 8, "native")).toHaveLength(2);
    expect(ids(assignLanes(six, 1, "native"))).toEqual([["autov1", "autov3", "blake3", "crc32", "sha256"]]);
  });
});

describe("startHashLanes", () => {
  // The bytes the lanes see, fed through a LaneFeeder in slots smaller than the file.
  const file = Uint8Array.from({ length: 3_000_001 }, (_, i) => (i * 7 + (i >> 10)) & 0xff);
  const specs: RangeHasherSpec[] = [
    { id: "crc32", kind: "crc32", start: 0, end: file.byteLength },
    { id: "tail", kind: "crc32", start: 1_234_567, end: file.byteLength },
  ];
  // "native" has the worker load @node-rs/crc32 (where core-tensors found it; else zlib's is used), "zlib" zlib's.
  it.each(["native", "zlib"] as const)("CRC-32 on a worker (%s) equals zlib's, whole file and a range", async (crc32Implementation) => {
    const lanes = await startHashLanes("<test>", [specs], 3, 1 << 20, "wasm", crc32Implementation);
    try {
      const feeder = new LaneFeeder(lanes);
      await feeder.copy(file.subarray(0, 2_000_000), 0);
      await feeder.copy(file.subarray(2_000_000), 2_000_000);
      await feeder.drain();
      expect(feeder.failure).toBeUndefined();
      const digests = await lanes.finish();
      expect(digests.get("crc32")).toBe(crc32(file).toString(16).padStart(8, "0"));
      expect(digests.get("tail")).toBe(crc32(file.subarray(1_234_567)).toString(16).padStart(8, "0"));
    } finally {
      await lanes.close();
    }
  });

  it("views of shared memory are read in place, in order with copied chunks, and free again once share resolves", async () => {
    // 300 000-byte pieces: each chunk reaches a lane's two digests a piece at a time.
    const lanes = await startHashLanes("<test>", [specs, [{ id: "sha256", kind: "sha256", start: 0, end: file.byteLength }]], 3, 1 << 20, "wasm", undefined, 300_000);
    try {
      const feeder = new LaneFeeder(lanes);
      const shared = new Uint8Array(new SharedArrayBuffer(2_000_000 + 64));
      // A plain chunk (copied), a large shared one (in place), a small shared one (copied), a plain tail.
      await feeder.copy(file.subarray(0, 500_000), 0);
      shared.set(file.subarray(500_000, 2_000_000), 64);
      await feeder.share(shared.subarray(64, 64 + 1_500_000), 500_000);
      // Resolved: every lane is done with it, so writing over it cannot change the digests.
      shared.fill(0xee);
      shared.set(file.subarray(2_000_000, 2_100_000), 10);
      await feeder.share(shared.subarray(10, 100_010), 2_000_000);
      shared.fill(0xdd);
      await feeder.copy(file.subarray(2_100_000), 2_100_000);
      await feeder.drain();
      expect(feeder.failure).toBeUndefined();
      const digests = await lanes.finish();
      expect(digests.get("crc32")).toBe(crc32(file).toString(16).padStart(8, "0"));
      expect(digests.get("sha256")).toBe(createHash("sha256").update(file).digest("hex"));
    } finally {
      await lanes.close();
    }
  });
});
