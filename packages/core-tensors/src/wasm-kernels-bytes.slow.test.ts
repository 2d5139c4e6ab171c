import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SIMD_KERNELS_SHARED_WASM_BASE64, SIMD_KERNELS_WASM_BASE64 } from "./wasm-kernels-bytes.js";

// The committed base64 must be what the committed AssemblyScript source compiles to, so no
// binary enters the repository that its source does not explain.
describe("embedded WebAssembly kernels", () => {
  it("equal a fresh compile of assembly/simd-kernels.ts (both builds: own memory, and a shared one imported)", { timeout: 180_000 }, () => {
    const script = fileURLToPath(new URL("../scripts/build-wasm-kernels.mjs", import.meta.url));
    // --check exits 1 (execFileSync throws) when the compile differs from src/wasm-kernels-bytes.ts.
    const output = execFileSync(process.execPath, [script, "--check"], { encoding: "utf8", stdio: "pipe" });
    expect(output).toBe("");
    for (const base64 of [SIMD_KERNELS_WASM_BASE64, SIMD_KERNELS_SHARED_WASM_BASE64]) expect(Buffer.from(base64, "base64").subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
  });
});
