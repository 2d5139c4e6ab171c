import type { KernelArena, KernelBackend } from "@stmerge/core-tensors";

/**
 * Grow-only scratch buffers, one per slot, in the kernel backend's arena where it makes one (its
 * WebAssembly kernels then work on them in place instead of copying blocks in and out), else in
 * its shared memory (SharedArrayBuffers are reclaimed lazily; reusing them keeps RSS flat). A
 * slot's old buffer goes back to the arena when it grows: the caller sees to it that its last user
 * is done by then. `release` gives every buffer back; none may be used afterwards.
 */
export class KernelScratch<Slot extends string | number> {
  readonly #bytes = new Map<Slot, Uint8Array>();
  readonly #floats = new Map<Slot, Float32Array>();
  readonly #arena: KernelArena | undefined;
  constructor(private readonly kernels: KernelBackend) {
    this.#arena = kernels.createArena?.();
  }
  bytes(slot: Slot, length: number): Uint8Array {
    let b = this.#bytes.get(slot);
    if (!b || b.byteLength < length) {
      if (b) this.#arena?.free(b);
      this.#bytes.set(slot, (b = (this.#arena ?? this.kernels).allocBytes(Math.max(length, 1))));
    }
    return b.subarray(0, length);
  }
  floats(slot: Slot, length: number): Float32Array {
    let f = this.#floats.get(slot);
    if (!f || f.length < length) {
      if (f) this.#arena?.free(f);
      this.#floats.set(slot, (f = (this.#arena ?? this.kernels).allocF32(Math.max(length, 1))));
    }
    return f.subarray(0, length);
  }
  release(): void {
    this.#arena?.release();
  }
}
