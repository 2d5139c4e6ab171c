import { writeFile } from "node:fs/promises";
import { crc32 } from "node:zlib";

/** The dtypes a checkpoint written here can hold (safetensors names). */
export type TorchTensorDType = "F32" | "F16" | "BF16" | "I64" | "I32" | "U8";

/**
 * A PyTorch zip checkpoint (the `torch.save` format since 1.6) for tests that need one built on
 * the fly (e.g. hundreds of MB, too big to commit): pickle protocol 2 of
 * `{"state_dict": OrderedDict(name → tensor), extras}`, one STORED zip entry per storage, data
 * aligned to 64 bytes as PyTorch's writer does. Test tooling only (checked against real
 * torch.load by its oracle test); stmerge itself never writes pickles, and reads them only in
 * safe-pickle.
 */
export interface TorchTensorInput {
  readonly name: string;
  readonly dtype: TorchTensorDType;
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

const STORAGE_CLASS: Record<TorchTensorDType, string> = { F32: "FloatStorage", F16: "HalfStorage", BF16: "BFloat16Storage", I64: "LongStorage", I32: "IntStorage", U8: "ByteStorage" };
const ELEMENT_SIZE: Record<TorchTensorDType, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 };

class PickleWriter {
  private chunks: number[] = [];
  private memo = 0;
  bytes(...b: number[]): void {
    for (const x of b) this.chunks.push(x);
  }
  u32(n: number): void {
    this.bytes(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
  }
  str(s: string): void {
    const b = new TextEncoder().encode(s);
    this.bytes(0x58); // BINUNICODE
    this.u32(b.length);
    this.bytes(...b);
    this.put();
  }
  int(n: number): void {
    if (n >= 0 && n < 256) this.bytes(0x4b, n); // BININT1
    else if (n >= -0x80000000 && n <= 0x7fffffff) {
      this.bytes(0x4a); // BININT
      this.u32(n >>> 0);
    } else {
      // LONG1 with 8 little-endian bytes
      const v = new DataView(new ArrayBuffer(8));
      v.setBigInt64(0, BigInt(n), true);
      this.bytes(0x8a, 8, ...new Uint8Array(v.buffer));
    }
  }
  global(module: string, name: string): void {
    this.bytes(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`)); // GLOBAL
    this.put();
  }
  put(): void {
    this.bytes(0x71, this.memo++ & 0xff); // BINPUT (memo ids wrap; we never BINGET them)
  }
  tuple(items: () => void, count: number): void {
    if (count === 0) return this.bytes(0x29); // EMPTY_TUPLE
    this.bytes(0x28); // MARK
    items();
    this.bytes(0x74); // TUPLE
  }
  result(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

function zipLocalHeader(name: Uint8Array, size: number, crc: number, offset: number): Uint8Array {
  // Pad the extra field so the entry's data starts on a 64-byte boundary.
  const base = offset + 30 + name.length + 4;
  const pad = (64 - (base % 64)) % 64;
  const header = new Uint8Array(30 + name.length + 4 + pad);
  const v = new DataView(header.buffer);
  v.setUint32(0, 0x04034b50, true);
  v.setUint16(4, 20, true);
  v.setUint16(8, 0, true); // STORED
  v.setUint32(14, crc, true);
  v.setUint32(18, size, true);
  v.setUint32(22, size, true);
  v.setUint16(26, name.length, true);
  v.setUint16(28, 4 + pad, true);
  header.set(name, 30);
  v.setUint16(30 + name.length, 0x1234, true); // private "padding" extra field id
  v.setUint16(32 + name.length, pad, true);
  return header;
}

function zipCentralEntry(name: Uint8Array, size: number, crc: number, localOffset: number): Uint8Array {
  const entry = new Uint8Array(46 + name.length);
  const v = new DataView(entry.buffer);
  v.setUint32(0, 0x02014b50, true);
  v.setUint16(4, 20, true);
  v.setUint16(6, 20, true);
  v.setUint32(16, crc, true);
  v.setUint32(20, size, true);
  v.setUint32(24, size, true);
  v.setUint16(28, name.length, true);
  v.setUint32(42, localOffset, true);
  entry.set(name, 46);
  return entry;
}

/** Builds the checkpoint bytes in memory. */
export function buildTorchCheckpoint(tensors: readonly TorchTensorInput[], extras: Readonly<Record<string, number>> = {}, archiveName = "archive"): Uint8Array {
  const p = new PickleWriter();
  p.bytes(0x80, 2); // PROTO 2
  p.bytes(0x7d); // EMPTY_DICT
  p.put();
  p.bytes(0x28); // MARK
  p.str("state_dict");
  p.global("collections", "OrderedDict");
  p.bytes(0x29, 0x52); // EMPTY_TUPLE, REDUCE
  p.put();
  p.bytes(0x28); // MARK
  tensors.forEach((t, index) => {
    const storageClass = STORAGE_CLASS[t.dtype];
    const elementSize = ELEMENT_SIZE[t.dtype];
    if (!storageClass || !elementSize) throw new Error(`torch checkpoint: dtype ${t.dtype} not supported`);
    p.str(t.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.bytes(0x28); // MARK (args tuple)
    p.tuple(() => {
      p.str("storage");
      p.global("torch", storageClass);
      p.str(String(index));
      p.str("cpu");
      p.int(t.data.byteLength / elementSize);
    }, 5);
    p.bytes(0x51); // BINPERSID
    p.int(0); // storage offset
    p.tuple(() => t.shape.forEach((d) => p.int(d)), t.shape.length);
    const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    p.tuple(() => strides.forEach((s) => p.int(s)), strides.length);
    p.bytes(0x89); // NEWFALSE (requires_grad)
    p.global("collections", "OrderedDict");
    p.bytes(0x29, 0x52); // OrderedDict()
    p.bytes(0x74, 0x52); // TUPLE, REDUCE
  });
  p.bytes(0x75); // SETITEMS (state_dict)
  for (const [key, value] of Object.entries(extras)) {
    p.str(key);
    p.int(value);
  }
  p.bytes(0x75, 0x2e); // SETITEMS (outer dict), STOP

  const entries: [string, Uint8Array][] = [[`${archiveName}/data.pkl`, p.result()]];
  tensors.forEach((t, index) => entries.push([`${archiveName}/data/${index}`, t.data]));
  entries.push([`${archiveName}/byteorder`, new TextEncoder().encode("little")]);
  entries.push([`${archiveName}/version`, new TextEncoder().encode("3\n")]);

  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBytes = new TextEncoder().encode(name);
    const crc = crc32(data) >>> 0;
    const local = zipLocalHeader(nameBytes, data.byteLength, crc, offset);
    central.push(zipCentralEntry(nameBytes, data.byteLength, crc, offset));
    parts.push(local, data);
    offset += local.byteLength + data.byteLength;
  }
  const centralStart = offset;
  const centralSize = central.reduce((a, c) => a + c.byteLength, 0);
  const eocd = new Uint8Array(22);
  const v = new DataView(eocd.buffer);
  v.setUint32(0, 0x06054b50, true);
  v.setUint16(8, entries.length, true);
  v.setUint16(10, entries.length, true);
  v.setUint32(12, centralSize, true);
  v.setUint32(16, centralStart, true);
  const total = centralStart + centralSize + eocd.byteLength;
  const out = new Uint8Array(total);
  let cursor = 0;
  for (const part of [...parts, ...central, eocd]) {
    out.set(part, cursor);
    cursor += part.byteLength;
  }
  return out;
}

export async function writeTorchCheckpoint(path: string, tensors: readonly TorchTensorInput[], extras: Readonly<Record<string, number>> = {}): Promise<number> {
  const bytes = buildTorchCheckpoint(tensors, extras);
  await writeFile(path, bytes);
  return bytes.byteLength;
}
