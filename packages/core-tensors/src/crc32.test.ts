import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { crc32, crc32Implementation, crc32Implementations, nativeCrc32ModulePath } from "./crc32.js";

// Bytes Python can make the same way: bytes((i * 31 + (i >> 8)) % 251 for i in range(1_000_003)).
const data = Uint8Array.from({ length: 1_000_003 }, (_, i) => (i * 31 + (i >> 8)) % 251);
// Python's zlib.crc32 of those bytes and of slices of them (printed by python3 -c, 2026-12-04).
const PYTHON_ZLIB = [
  { what: "all of them", bytes: data, crc: 0x4a19684e },
  { what: "the first byte", bytes: data.subarray(0, 1), crc: 0xd202ef8d },
  { what: "bytes 7–70006 (an odd offset)", bytes: data.subarray(7, 70007), crc: 0x0ccf3dbb },
  { what: "nothing", bytes: new Uint8Array(0), crc: 0 },
  { what: "the check string 123456789", bytes: new TextEncoder().encode("123456789"), crc: 0xcbf43926 },
];

const nativeInstalled = (() => {
  try {
    createRequire(import.meta.url).resolve("@node-rs/crc32");
    return true;
  } catch {
    return false;
  }
})();

describe("crc32", () => {
  const implementations = [...crc32Implementations()];

  it.each(implementations)("%s gives Python zlib's values", (_name, f) => {
    for (const { bytes, crc } of PYTHON_ZLIB) expect(f(bytes)).toBe(crc);
  });

  it.each(implementations)("%s continues from the CRC of what came before, from any split", (_name, f) => {
    for (const split of [0, 1, 3, 4096, 500_000, data.length - 1, data.length]) expect(f(data.subarray(split), f(data.subarray(0, split)))).toBe(0x4a19684e);
  });

  it.each(implementations)("%s reads views of shared memory at any offset", (_name, f) => {
    const shared = new Uint8Array(new SharedArrayBuffer(70_100));
    shared.set(data.subarray(0, 70_100));
    expect(f(shared.subarray(7, 70007))).toBe(0x0ccf3dbb);
  });

  it("crc32 is the first implementation (the fastest found), and zlib's and the table are always there", () => {
    expect(crc32Implementation()).toBe(implementations[0]![0]);
    expect(crc32(data)).toBe(0x4a19684e);
    expect(crc32(data.subarray(500_000), crc32(data.subarray(0, 500_000)))).toBe(0x4a19684e);
    expect(implementations.map(([name]) => name)).toEqual(expect.arrayContaining(["table"]));
  });

  // The optional prebuilt installs on this kind of machine; where it does not, zlib's is used (above).
  it.runIf(nativeInstalled)("with @node-rs/crc32 installed, it is the one used, and workers are told where it is", () => {
    expect(crc32Implementation()).toBe("native");
    expect(nativeCrc32ModulePath()).toMatch(/@node-rs[/\\]crc32/);
  });
});
