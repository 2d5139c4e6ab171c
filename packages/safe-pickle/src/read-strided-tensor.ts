import type { FileHandle } from "node:fs/promises";
import { readFully, TensorIoError } from "@stmerge/core-tensors";
import type { PyTensor } from "./py-values.js";

/** Where a storage's bytes live in the file. */
export interface StorageLocation {
  readonly fileOffset: number;
  readonly byteLength: number;
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

/** Above this span a strided read goes slice by slice along its outer dim, so memory stays near the tensor's size. */
const MAX_SPAN_BYTES = 64 << 20;

/**
 * Reads the storage span a view touches and gathers it; when that span is much larger than the
 * view (a step slice of a large storage), recurses over the outermost dim instead.
 */
async function gatherView(handle: FileHandle, base: number, out: Uint8Array, shape: readonly number[], stride: readonly number[], offset: number, size: number, file: string, maxSpan: number): Promise<void> {
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * stride[i]!;
  const spanBytes = (last - offset + 1) * size;
  if (spanBytes > maxSpan && spanBytes > 2 * out.byteLength && shape.length > 1) {
    const inner = out.byteLength / shape[0]!;
    for (let i = 0; i < shape[0]!; i++) {
      await gatherView(handle, base, out.subarray(i * inner, (i + 1) * inner), shape.slice(1), stride.slice(1), offset + i * stride[0]!, size, file, maxSpan);
    }
    return;
  }
  const span = new Uint8Array(spanBytes);
  await readFully(handle, span, 0, spanBytes, base + offset * size, file);
  if (shape.length === 0) out.set(span.subarray(0, size));
  else gather(span, out, shape, stride, size);
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
