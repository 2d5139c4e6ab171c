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
    return this.#take(this.#bytes, slot, length, (n) => (this.#arena ?? this.kernels).allocBytes(n));
  }
  floats(slot: Slot, length: number): Float32Array {
    return this.#take(this.#floats, slot, length, (n) => (this.#arena ?? this.kernels).allocF32(n));
  }
  /** `length` elements of the slot's buffer, which grows (the old one freed) when it is shorter. */
  #take<T extends Uint8Array | Float32Array>(buffers: Map<Slot, T>, slot: Slot, length: number, alloc: (length: number) => T): T {
    let b = buffers.get(slot);
    if (!b || b.length < length) {
      if (b) this.#arena?.free(b);
      buffers.set(slot, (b = alloc(Math.max(length, 1))));
    }
    return b.subarray(0, length) as T;
  }
  release(): void {
    this.#arena?.release();
  }
}
