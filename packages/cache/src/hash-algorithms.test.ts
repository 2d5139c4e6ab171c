import { describe, expect, it } from "vitest";
import { autoV3Start, civitaiCrc32ToZlib, formatCrc32Civitai, HASH_ALGORITHMS, parseHashAlgorithms } from "./hash-algorithms.js";

function prefix(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

describe("hash algorithm helpers", () => {
  it("parses algorithm lists", () => {
    expect(parseHashAlgorithms("SHA256, autov2,sha256")).toEqual(["sha256", "autov2"]);
    expect(parseHashAlgorithms("all")).toEqual([...HASH_ALGORITHMS]);
    expect(() => parseHashAlgorithms("md5")).toThrow(/unknown hash algorithm "md5"/);
    expect(() => parseHashAlgorithms(" , ")).toThrow(/no hash algorithm/);
  });
  it("prints CRC32 in CivitAI's byte order and back", () => {
    expect(formatCrc32Civitai(0x0d4a1185)).toBe("85114A0D");
    expect(formatCrc32Civitai(0)).toBe("00000000");
    expect(formatCrc32Civitai(0xffffffff)).toBe("FFFFFFFF");
    expect(civitaiCrc32ToZlib("85114A0D")).toBe("0d4a1185");
  });
  it("AutoV3 starts after the header, at 8 for non-safetensors, nowhere for tiny files", () => {
    expect(autoV3Start(prefix(100n), 1000)).toBe(108);
    expect(autoV3Start(prefix(5000n), 1000)).toBe(1000);
    expect(autoV3Start(prefix(16n * 1024n * 1024n), 10 ** 9)).toBe(8);
    expect(autoV3Start(prefix(2n ** 63n), 10 ** 9)).toBe(8);
    expect(autoV3Start(prefix(0n), 7)).toBeUndefined();
  });
});
