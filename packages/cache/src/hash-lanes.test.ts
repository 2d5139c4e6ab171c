import { describe, expect, it } from "vitest";
import { assignLanes } from "./hash-lanes.js";
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
  it("two lanes: each carries one full SHA-256 and one of the cheaper digests", () => {
    expect(ids(assignLanes(six, 2, "native"))).toEqual([["autov1", "crc32", "sha256"], ["autov3", "blake3"]]);
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
