import { DTYPE_SIZE } from "./dtypes.js";
import type { EncodedTensor } from "./kernel-backend.js";
import { localCodecs, localOps, simdKernelsAvailable } from "./local-kernels.js";

// The gathered blocks of the two inputs, grown as needed (a sample is at most a few hundred KB).
const gathered: [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array(0)];

/**
 * The blocks of `block` elements at `starts` of `tensor`, one after another, in gathered[slot],
 * copied element by element through typed views (a TypedArray.prototype.set per block of 64
 * costs as much, and makes a view per block).
 */
function gather(slot: 0 | 1, { bytes, dtype }: EncodedTensor, starts: readonly number[], block: number): Uint8Array {
  const size = DTYPE_SIZE[dtype];
  const length = starts.length * block * size;
  // 4-byte aligned, as the typed views and the kernels need.
  if (gathered[slot].byteLength < length) gathered[slot] = new Uint8Array(Math.ceil(length / 4) * 4);
  const into = gathered[slot];
  const aligned = bytes.byteOffset % size === 0 && (size === 2 || size === 4);
  const elements = (buffer: ArrayBufferLike, offset: number, count: number) => (size === 2 ? new Uint16Array(buffer, offset, count) : new Uint32Array(buffer, offset, count));
  const from = aligned ? elements(bytes.buffer, bytes.byteOffset, bytes.byteLength / size) : bytes;
  const to = aligned ? elements(into.buffer, 0, length / size) : into;
  const step = aligned ? block : block * size;
  const scale = aligned ? 1 : size;
  copyBlocks(from, to, starts, step, scale);
  return into.subarray(0, length);
}

/** to[j·step + e] = from[starts[j]·scale + e] for e < step: the hot loop, a function of its own. */
function copyBlocks(from: Uint8Array | Uint16Array | Uint32Array, to: Uint8Array | Uint16Array | Uint32Array, starts: readonly number[], step: number, scale: number): void {
  for (let j = 0; j < starts.length; j++) {
    const start = starts[j]! * scale;
    for (let e = 0, o = j * step; e < step; e++, o++) to[o] = from[start + e]!;
  }
}

/**
 * TIES's sample of a task vector on the calling thread (merge-engine's ties places a window with
 * it before a key's window pass): adds to `bins` (65536) the top 16 bits of |fround(x − base)| as
 * F32 bits (NaN counted, as taskVectorHistogram does) of the blocks of `block` elements at
 * `starts` of two encoded tensors; returns the lowest and highest bin it may have counted into
 * ([0, 65535] where it does not know). The WebAssembly SIMD kernel where the engine has it, else
 * the JavaScript one.
 */
export function sampleTaskVectorHistogram(base: EncodedTensor, x: EncodedTensor, starts: readonly number[], block: number, bins: Uint32Array): [first: number, last: number] {
  const codes = localCodecs().DTYPE_CODE;
  const arrays = [gather(0, base, starts, block), gather(1, x, starts, block), bins];
  const range = localOps(simdKernelsAvailable()).taskVectorHistogramEncoded!(arrays, 0, starts.length * block, { db: codes[base.dtype]!, dx: codes[x.dtype]!, level: 0, prefix: 0 });
  return Array.isArray(range) ? [range[0] as number, range[1] as number] : [0, 65535];
}
