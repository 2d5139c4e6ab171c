import type { FileHandle } from "node:fs/promises";
import { readFully, TensorIoError } from "@stmerge/core-tensors";
import type { PyTensor } from "./py-values.js";

/** Where a storage's bytes live in the file. */
export interface StorageLocation {
  readonly fileOffset: number;
  readonly byteLength: number;
  /** The CRC-32 the zip's central directory records for the storage's bytes (zip checkpoints only). */
  readonly crc32?: number;
}

export function tensorElementCount(tensor: PyTensor): number {
  let n = 1;
  for (const d of tensor.shape) n *= d;
  return n;
}

/** True when the view is row-major contiguous (dims of size 1 may carry any stride). */
export function isContiguous(tensor: PyTensor): boolean {
  let expected = 1;
  for (let i = tensor.shape.length - 1; i >= 0; i--) {
    const dim = tensor.shape[i]!;
    if (dim === 0) return true;
    if (dim !== 1 && tensor.stride[i] !== expected) return false;
    expected *= dim;
  }
  return true;
}

function swapInPlace(bytes: Uint8Array, elementSize: number): void {
  if (elementSize === 1) return;
  for (let i = 0; i + elementSize <= bytes.length; i += elementSize) bytes.subarray(i, i + elementSize).reverse();
}

/**
 * Reads a tensor's bytes contiguously. Contiguous views are one positioned read; strided views
 * (transposes, slices with steps) read the storage span they touch and gather element by
 * element, row by row, so the result matches `tensor.contiguous()` exactly.
 */
export async function readStridedTensor(
  handle: FileHandle,
  location: StorageLocation,
  tensor: PyTensor,
  file: string,
  options: { readonly into?: Uint8Array; readonly bigEndian?: boolean; /** Largest storage span read at once (default 64 MiB). */ readonly maxSpanBytes?: number } = {},
): Promise<Uint8Array> {
  const size = tensor.elementSize;
  const count = tensorElementCount(tensor);
  const byteLength = count * size;
  const { into } = options;
  if (into && into.byteLength < byteLength) throw new TensorIoError("BUFFER_TOO_SMALL", `${file}: buffer of ${into.byteLength} bytes cannot hold ${byteLength}`, { file });
  const out = into ? into.subarray(0, byteLength) : new Uint8Array(byteLength);
  if (count === 0) return out;
  const base = location.fileOffset + tensor.storage.byteOffset;
  if (isContiguous(tensor)) {
    await readFully(handle, out, 0, byteLength, base + tensor.storageOffset * size, file);
  } else {
    await gatherView(handle, base, out, tensor.shape, tensor.stride, tensor.storageOffset, size, file, options.maxSpanBytes ?? MAX_SPAN_BYTES);
  }
  if (options.bigEndian) swapInPlace(out, size);
  return out;
}

/** Above this span (and twice the view's size) a strided read goes in pieces, so memory stays near the tensor's size. */
const MAX_SPAN_BYTES = 64 << 20;

/**
 * Reads the storage span a view touches and gathers it. When that span is much larger than the
 * view (a step slice of a large storage, a 1-D view with a huge stride), it walks the outer dims
 * with an odometer until the inner span is small, and splits a 1-D remainder into chunks whose
 * span is at most `maxSpan`: bytes read stay within max(maxSpan, 2 x output) per piece, never
 * the whole span. Iterative: the view's rank costs no call-stack depth.
 */
async function gatherView(handle: FileHandle, base: number, out: Uint8Array, shape: readonly number[], stride: readonly number[], offset: number, size: number, file: string, maxSpan: number): Promise<void> {
  const rank = shape.length;
  if (rank === 0) {
    await readFully(handle, out, 0, size, base + offset * size, file);
    return;
  }
  // innerSpan[p] / innerBytes[p]: storage span and output size of the view made of dims p.. (suffix sums).
  const innerSpan = new Array<number>(rank + 1).fill(1);
  const innerBytes = new Array<number>(rank + 1).fill(size);
  for (let i = rank - 1; i >= 0; i--) {
    innerSpan[i] = innerSpan[i + 1]! + (shape[i]! - 1) * stride[i]!;
    innerBytes[i] = innerBytes[i + 1]! * shape[i]!;
  }
  const fits = (p: number): boolean => innerSpan[p]! * size <= Math.max(maxSpan, 2 * innerBytes[p]!);
  let p = 0;
  while (p < rank - 1 && !fits(p)) p++;
  const innerShape = shape.slice(p);
  const innerStride = stride.slice(p);
  const pieceBytes = innerBytes[p]!;
  const readPiece = async (start: number, dst: Uint8Array): Promise<void> => {
    if (fits(p)) {
      const span = new Uint8Array(innerSpan[p]! * size);
      await readFully(handle, span, 0, span.length, base + start * size, file);
      gather(span, dst, innerShape, innerStride, size);
      return;
    }
    // A 1-D view whose span is too large: chunks of `per` elements, each span within maxSpan.
    const n = shape[rank - 1]!;
    const s = stride[rank - 1]!;
    const per = Math.max(1, Math.floor((Math.floor(maxSpan / size) - 1) / s) + 1);
    const span = new Uint8Array(((Math.min(per, n) - 1) * s + 1) * size);
    for (let j = 0; j < n; j += per) {
      const m = Math.min(per, n - j);
      const length = ((m - 1) * s + 1) * size;
      await readFully(handle, span, 0, length, base + (start + j * s) * size, file);
      gather(span.subarray(0, length), dst.subarray(j * size, (j + m) * size), [m], [s], size);
    }
  };
  const index = new Array<number>(p).fill(0);
  let start = offset;
  let outPos = 0;
  for (;;) {
    await readPiece(start, out.subarray(outPos, outPos + pieceBytes));
    outPos += pieceBytes;
    let d = p - 1;
    while (d >= 0) {
      index[d]!++;
      start += stride[d]!;
      if (index[d]! < shape[d]!) break;
      start -= stride[d]! * shape[d]!;
      index[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

/** Odometer walk over all dims but the last; the last dim is copied in one go when its stride is 1. */
function gather(span: Uint8Array, out: Uint8Array, shape: readonly number[], stride: readonly number[], size: number): void {
  const rank = shape.length;
  const inner = shape[rank - 1]!;
  const innerStride = stride[rank - 1]!;
  const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let outPos = 0;
  let rowStart = 0;
  for (;;) {
    if (innerStride === 1) {
      out.set(span.subarray(rowStart * size, (rowStart + inner) * size), outPos);
      outPos += inner * size;
    } else {
      for (let j = 0; j < inner; j++) {
        const from = (rowStart + j * innerStride) * size;
        for (let b = 0; b < size; b++) out[outPos++] = span[from + b]!;
      }
    }
    let d = rank - 2;
    while (d >= 0) {
      index[d]!++;
      rowStart += stride[d]!;
      if (index[d]! < shape[d]!) break;
      rowStart -= stride[d]! * shape[d]!;
      index[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

/**
 * A tensor's contiguous bytes from its whole storage already in memory (`storageBytes` is the
 * root storage as it lies in the file). Contiguous little-endian views are returned as a
 * subarray without copying; strided views are gathered into `into` or a new array.
 */
export function extractTensorFromStorage(storageBytes: Uint8Array, tensor: PyTensor, options: { readonly into?: Uint8Array; readonly bigEndian?: boolean } = {}): Uint8Array {
  const size = tensor.elementSize;
  const byteLength = tensorElementCount(tensor) * size;
  const start = tensor.storage.byteOffset + tensor.storageOffset * size;
  if (byteLength === 0) return new Uint8Array(0);
  if (isContiguous(tensor) && !options.bigEndian) return storageBytes.subarray(start, start + byteLength);
  const out = options.into ? options.into.subarray(0, byteLength) : new Uint8Array(byteLength);
  if (isContiguous(tensor)) out.set(storageBytes.subarray(start, start + byteLength));
  else gather(storageBytes.subarray(start), out, tensor.shape, tensor.stride, size);
  if (options.bigEndian) swapInPlace(out, size);
  return out;
}
