import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import { f32ToF16Bits } from "./float-codecs.js";
import { ARENA_SCRATCH_BYTES, ARENA_STATIC_BYTES, ArenaLease, SharedKernelArena } from "./kernel-arena.js";
import { localOps, simdKernelsAvailable } from "./local-kernels.js";
import { SIMD_KERNELS_SHARED_WASM_BASE64 } from "./wasm-kernels-bytes.js";
import { wasmKernelsModule } from "./wasm-kernels-module.js";
import { KernelWorkerPool } from "./worker-pool.js";

const hasSimd = simdKernelsAvailable();

describe("SharedKernelArena", () => {
  const arena = (threads = 2) => new SharedKernelArena(threads);

  it("hands out zero-filled blocks past the static data and each thread's scratch, on 64 bytes, and knows its own views", () => {
    const a = arena(2);
    const bytes = a.allocBytes(1000);
    const floats = a.allocF32(10);
    expect(bytes.byteOffset).toBe(ARENA_STATIC_BYTES + 2 * ARENA_SCRATCH_BYTES);
    expect(floats.byteOffset % 64).toBe(0);
    // Blocks do not overlap, and each has slack after it for reads past a range.
    expect(floats.byteOffset).toBeGreaterThanOrEqual(bytes.byteOffset + 1000 + 28);
    expect(bytes.every((b) => b === 0)).toBe(true);
    expect(a.addressOf(bytes)).toBe(bytes.byteOffset);
    expect(a.addressOf(floats.subarray(3))).toBe(floats.byteOffset + 12);
    expect(a.addressOf(new Uint8Array(new SharedArrayBuffer(8)))).toBe(-1);
    // A view over the memory's static data or scratch, made from a block's buffer, is not a block.
    expect(a.addressOf(new Uint8Array(bytes.buffer, 0, 64))).toBe(-1);
    expect(a.addressOf(new Uint8Array(bytes.buffer, ARENA_STATIC_BYTES, 64))).toBe(-1);
    expect(arena().addressOf(bytes)).toBe(-1);
  });

  it("reuses freed blocks (best fit, split, coalesced, zero-filled again) and ignores views it did not give", () => {
    const a = arena(1);
    const [x, y, z] = [a.allocBytes(4096), a.allocBytes(4096), a.allocBytes(4096)];
    const top = a.allocBytes(64);
    x.fill(1);
    y.fill(2);
    a.free(x);
    a.free(y);
    // x and y coalesced: a block larger than either fits where they were.
    const big = a.allocBytes(6000);
    expect(big.byteOffset).toBe(x.byteOffset);
    expect(big.every((b) => b === 0)).toBe(true);
    // The rest of that block is split off and used next.
    const small = a.allocBytes(100);
    expect(small.byteOffset).toBeGreaterThan(big.byteOffset);
    expect(small.byteOffset).toBeLessThan(z.byteOffset);
    a.free(new Uint8Array(new SharedArrayBuffer(64)));
    a.free(z.subarray(64));
    // Freeing the top block gives it back: a block larger than any free one starts there again.
    a.free(top);
    expect(a.allocBytes(8192).byteOffset).toBe(top.byteOffset);
  });

  it("never hands out overlapping blocks, whatever the order of allocations and frees (each block keeps its own bytes)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 1, max: 200_000 }), fc.nat()), { minLength: 1, maxLength: 80 }), (steps) => {
        const a = arena(1);
        const live: { view: Uint8Array; mark: number }[] = [];
        let mark = 0;
        for (const [allocate, size, pick] of steps) {
          if (allocate || live.length === 0) {
            const view = a.allocBytes(size);
            expect(view.every((b) => b === 0)).toBe(true);
            mark = (mark % 250) + 1;
            view.fill(mark);
            live.push({ view, mark });
          } else {
            const [gone] = live.splice(pick % live.length, 1);
            a.free(gone!.view);
          }
          // Every live block still holds only its own mark, and no two overlap.
          for (const { view, mark: m } of live) expect(view.every((b) => b === m)).toBe(true);
          const spans = live.map(({ view }) => [view.byteOffset, view.byteOffset + view.byteLength] as const).sort((x, y) => x[0] - y[0]);
          for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1] + 28);
        }
        // With everything freed, the memory is one free stretch again: the next block starts at the bottom.
        for (const { view } of live.splice(0)) a.free(view);
        expect(a.allocBytes(64).byteOffset).toBe(ARENA_STATIC_BYTES + ARENA_SCRATCH_BYTES);
      }),
      { numRuns: 60 },
    );
  });

  it("grows its memory as blocks are taken", () => {
    const a = arena(1);
    const before = a.byteLength;
    const large = a.allocF32(3 << 20);
    expect(a.byteLength).toBeGreaterThanOrEqual(before + (12 << 20));
    expect(a.addressOf(large)).toBeGreaterThan(0);
  });

  it("past its maximum size it hands out plain shared buffers outside it (arrays the kernels copy, as any elsewhere)", () => {
    const small = new SharedKernelArena(1, ARENA_STATIC_BYTES + ARENA_SCRATCH_BYTES + (1 << 20));
    const inside = small.allocBytes(512 << 10);
    const outside = small.allocBytes(1 << 20);
    expect(small.addressOf(inside)).toBeGreaterThan(0);
    expect(outside.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(small.addressOf(outside)).toBe(-1);
    // Smaller blocks still fit in what is left.
    expect(small.addressOf(small.allocBytes(256 << 10))).toBeGreaterThan(0);
  });

  it("a lease gives all its blocks back on release, so the next lease reuses the same pages; after release it hands out plain shared buffers", () => {
    const memory = arena(1);
    const first = new ArenaLease(memory);
    const [x, y] = [first.allocBytes(100_000), first.allocF32(50_000)];
    first.free(new Uint8Array(new SharedArrayBuffer(8))); // not its own: ignored
    first.release();
    const after = first.allocBytes(100);
    expect(after.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(memory.addressOf(after)).toBe(-1);
    const second = new ArenaLease(memory);
    const grown = memory.byteLength;
    const z = second.allocBytes(300_000);
    expect(z.byteOffset).toBe(x.byteOffset);
    expect(z.byteOffset + z.byteLength).toBeGreaterThan(y.byteOffset);
    expect(memory.byteLength).toBe(grown);
  });
});

describe.skipIf(!hasSimd)("kernels on an arena", () => {
  const pools: KernelWorkerPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it("the module's static data fits below the arena's scratch", () => {
    const api = (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => object } }).WebAssembly;
    const memory = new api.Memory({ initial: 64, maximum: 65536, shared: true });
    const scratch = { memory, scratchAt: ARENA_STATIC_BYTES, scratchBytes: ARENA_SCRATCH_BYTES };
    expect(wasmKernelsModule(localOps(true), SIMD_KERNELS_SHARED_WASM_BASE64, scratch)).toBeDefined();
    // Scratch over the static data is refused (the caller keeps the copying kernels).
    expect(wasmKernelsModule(localOps(true), SIMD_KERNELS_SHARED_WASM_BASE64, { ...scratch, scratchAt: 16 })).toBeUndefined();
  });

  it("an op that needs more scratch than the arena gave runs the copying kernels instead, with the same result", () => {
    const api = (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => { buffer: SharedArrayBuffer } } }).WebAssembly;
    const memory = new api.Memory({ initial: 64, maximum: 65536, shared: true });
    const copying = localOps(true);
    let fallbacks = 0;
    const counted = { ...copying, weightedSumEncoded: (...args: Parameters<NonNullable<typeof copying.weightedSumEncoded>>) => (fallbacks++, copying.weightedSumEncoded!(...args)) };
    // 400 KB of scratch: TIES's bins and a few inputs' blocks, not thirty inputs'.
    const inPlace = wasmKernelsModule(counted, SIMD_KERNELS_SHARED_WASM_BASE64, { memory, scratchAt: ARENA_STATIC_BYTES, scratchBytes: 400_000 })!;
    const n = 1000;
    const sum = (count: number) => {
      const inputs = Array.from({ length: count }, (_, k) => new Uint8Array(new Uint16Array(n).fill(0x3c00 + k).buffer));
      const params: Record<string, number> = { od: 2 };
      inputs.forEach((_, k) => ((params[`w${k}`] = 1 / count), (params[`d${k}`] = 2)));
      const got = new Uint8Array(2 * n);
      const expected = new Uint8Array(2 * n);
      inPlace.weightedSumEncoded!([got, ...inputs], 0, n, params, inputs.map(() => -1));
      localOps(false).weightedSumEncoded!([expected, ...inputs], 0, n, params);
      expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);
    };
    sum(3);
    expect(fallbacks).toBe(0);
    sum(30);
    expect(fallbacks).toBe(1);
  });

  it("a worker reads the arrays at their arena addresses, not through the views it was sent", async () => {
    const pool = new KernelWorkerPool(2, { simd: true });
    pools.push(pool);
    const arena = new SharedKernelArena(2);
    const n = 10_000;
    const codes = (value: number) => {
      const bytes = arena.allocBytes(2 * n);
      new Uint16Array(bytes.buffer, bytes.byteOffset, n).fill(f32ToF16Bits(value));
      return bytes;
    };
    const [x, y] = [codes(1.5), codes(-0.25)];
    // Views of zeros stand in for the inputs: only the addresses lead to the values.
    const zeros = () => new Uint8Array(new SharedArrayBuffer(2 * n));
    const out = new Uint8Array(new SharedArrayBuffer(2 * n));
    const params = { w0: 0.5, w1: 2, d0: 2, d1: 2, od: 2 };
    for (const slot of [0, 1]) {
      out.fill(0);
      await pool.run(slot, { op: "weightedSumEncoded", arrays: [out, zeros(), zeros()], from: 0, to: n, params, arena: { attachment: arena.attachment, at: [-1, x.byteOffset, y.byteOffset] } });
      // 0.5 · 1.5 + 2 · −0.25 = 0.25 (F16 0x3400) everywhere.
      expect(new Set(new Uint16Array(out.buffer))).toEqual(new Set([0x3400]));
    }
  });

  it("a backend makes arenas only with worker threads and SIMD kernels, all on one memory: a second arena reuses the first's blocks", async () => {
    const inline = createCpuKernelBackend({ workers: 0 });
    const plain = createCpuKernelBackend({ workers: 2, simd: false });
    const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 1000 });
    try {
      expect(inline.createArena!()).toBeUndefined();
      expect(plain.createArena!()).toBeUndefined();
      const sum = async (arena: NonNullable<ReturnType<NonNullable<typeof pooled.createArena>>>) => {
        const x = arena.allocF32(5000).fill(2);
        const y = arena.allocF32(5000).fill(3);
        const out = arena.allocF32(5000);
        await pooled.weightedSum([x, y, x], [1, 1, 0.5], out);
        expect(new Set(out)).toEqual(new Set([6]));
        return x.byteOffset;
      };
      const first = pooled.createArena!()!;
      const at = await sum(first);
      first.release();
      const second = pooled.createArena!()!;
      expect(await sum(second)).toBe(at);
      second.release();
    } finally {
      await Promise.all([inline.close(), plain.close(), pooled.close()]);
    }
  });
});
