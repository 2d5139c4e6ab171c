import { execFileSync } from "node:child_process";
import { seededBytes } from "@stmerge/test-utils";
import { describe, expect, it } from "vitest";
import { crc32Combine } from "./crc32-combine.js";

// Live cross-check against Python's zlib; runs only under `pnpm test:oracle`, which sets STMERGE_ORACLE_PYTHON.
const python = process.env.STMERGE_ORACLE_PYTHON;

describe.runIf(python)("crc32Combine against Python's zlib", () => {
  it.each([
    [12_345, 54_321],
    [1, 0],
    [0, 7],
    [65_536, 3],
  ])("CRC-32 of A (%i bytes) + B (%i bytes) from the parts equals zlib.crc32 of the concatenation", (lengthA, lengthB) => {
    const A = seededBytes(lengthA, 3);
    const B = seededBytes(lengthB, 9);
    const script = "import sys, zlib; a, b = (bytes.fromhex(x) for x in sys.stdin.read().split(',')); print(zlib.crc32(a), zlib.crc32(b), zlib.crc32(a + b))";
    const out = execFileSync(python!, ["-c", script], { input: `${Buffer.from(A).toString("hex")},${Buffer.from(B).toString("hex")}`, encoding: "utf8" });
    const [ca, cb, whole] = out.trim().split(" ").map(Number);
    expect(crc32Combine(ca!, cb!, B.byteLength)).toBe(whole);
  });
});
