import { createCpuKernelBackend, type KernelArena, type KernelBackend } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { KernelScratch } from "./kernel-scratch.js";

describe("KernelScratch", () => {
  const kernels = createCpuKernelBackend({ workers: 1 });
  afterAll(() => kernels.close());

  it("keeps one buffer per slot, reused while it fits and replaced when it must grow, in shared memory without an arena", () => {
    const scratch = new KernelScratch<string>({ ...kernels, createArena: undefined });
    const a = scratch.floats("w", 100);
    const b = scratch.floats("w", 60);
    expect(a).toHaveLength(100);
    expect(b).toHaveLength(60);
    expect(b.buffer).toBe(a.buffer);
    expect(a.buffer).toBeInstanceOf(SharedArrayBuffer);
    const c = scratch.floats("w", 1000);
    expect(c.buffer).not.toBe(a.buffer);
    // Slots are independent, and bytes and floats are separate slots.
    expect(scratch.floats("up", 10).buffer).not.toBe(c.buffer);
    expect(scratch.bytes("w", 10).buffer).not.toBe(c.buffer);
    scratch.release();
  });

  it("allocates in the backend's arena when it makes one, frees a slot's old buffer when it grows, and releases the arena", () => {
    const calls: string[] = [];
    const real = kernels.createArena!()!;
    const arena: KernelArena = {
      allocBytes: (n) => (calls.push(`bytes ${n}`), real.allocBytes(n)),
      allocF32: (n) => (calls.push(`f32 ${n}`), real.allocF32(n)),
      free: (view) => (calls.push(`free ${view.byteLength}`), real.free(view)),
      release: () => (calls.push("release"), real.release()),
    };
    const backend: KernelBackend = { ...kernels, createArena: () => arena };
    const scratch = new KernelScratch<number>(backend);
    scratch.bytes(0, 16);
    scratch.bytes(0, 8);
    scratch.bytes(0, 32);
    scratch.floats(1, 0);
    scratch.release();
    expect(calls).toEqual(["bytes 16", "free 16", "bytes 32", "f32 1", "release"]);
  });
});
