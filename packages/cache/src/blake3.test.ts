import { describe, expect, it } from "vitest";
import { blake3Backend, createBlake3Hasher } from "./blake3.js";

// Official BLAKE3 test vectors (test_vectors.json): input byte i is i % 251; first 32 bytes of output.
const VECTORS: [number, string][] = [
  [0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"],
  [1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"],
  [1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"],
  [1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"],
  [2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"],
  [4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"],
  [5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"],
];

function input(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => i % 251);
}

describe("BLAKE3", () => {
  it("the native prebuilt loads on this machine", () => {
    expect(blake3Backend()).toBe("native");
  });
  for (const backend of ["native", "wasm"] as const) {
    for (const [n, hex] of VECTORS) {
      it(`${backend}: official vector, ${n} bytes, fed in uneven pieces`, async () => {
        const h = await createBlake3Hasher(backend);
        const bytes = input(n);
        for (let o = 0; o < n; o += 333) h.update(bytes.subarray(o, Math.min(n, o + 333)));
        expect(h.digestHex()).toBe(hex);
      });
    }
  }
});
