import { dtypeSize, isDType, shapeElementCount, type DType } from "./dtypes.js";
import { SafetensorsError } from "./errors.js";
import { hasLoneSurrogate } from "./has-lone-surrogate.js";
import { scanHeaderJson } from "./json-top-level-keys.js";

/** Headers larger than this are refused before decoding, as the reference implementation does. */
export const MAX_SAFETENSORS_HEADER_BYTES = 100_000_000;
/** Deepest JSON nesting accepted in a header: the reference (serde_json, recursion limit 128) accepts 127 levels and refuses 128; real headers are 3 deep. */
export const MAX_SAFETENSORS_HEADER_DEPTH = 127;

export interface SafetensorsTensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** Offset of the tensor's first byte relative to the start of the data block. */
  readonly dataOffset: number;
}

export interface SafetensorsHeader {
  /** Length N of the JSON header (the u64 at the start of the file). */
  readonly headerLength: number;
  /** Absolute offset of the data block in the file: 8 + N. */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** Entries in file order (ascending data offset). */
  readonly tensors: readonly SafetensorsTensorEntry[];
}

function fail(code: string, file: string, message: string): never {
  throw new SafetensorsError(code, `${file}: ${message}`, { file });
}

/** Reads the u64 little-endian header length from the first 8 bytes and checks it against the file size. */
export function parseSafetensorsHeaderLength(prefix: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) fail("SAFETENSORS_TOO_SMALL", file, `file is ${fileSize} bytes, too small to be safetensors (needs an 8-byte header length)`);
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) fail("SAFETENSORS_HEADER_TOO_LARGE", file, `header length ${n} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  const headerLength = Number(n);
  if (8 + headerLength > fileSize) fail("SAFETENSORS_HEADER_TRUNCATED", file, `header length ${headerLength} runs past the end of the ${fileSize}-byte file`);
  return headerLength;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * Validates a safetensors header as strictly as the reference Rust implementation: UTF-8 JSON
 * object, no duplicate names, known dtypes, shape × dtype size equal to the byte range, ranges
 * contiguous from 0 without gap or overlap, and the data ending exactly at the end of the file.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, file: string): SafetensorsHeader {
  const headerLength = headerBytes.byteLength;
  const dataStart = 8 + headerLength;
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    fail("SAFETENSORS_HEADER_NOT_UTF8", file, "header is not valid UTF-8");
  }
  if (!text.startsWith("{")) {
    // Like the reference implementation, the header must start with "{"; say whether it is
    // other JSON (an array, a string, null) or not JSON at all.
    let other: unknown;
    try {
      other = JSON.parse(text);
    } catch {
      other = undefined;
    }
    if (other === undefined || (typeof other === "object" && other !== null && !Array.isArray(other))) {
      fail("SAFETENSORS_HEADER_NOT_JSON", file, "header does not start with '{' (not a safetensors file?)");
    }
    fail("SAFETENSORS_HEADER_NOT_OBJECT", file, `header JSON is ${other === null ? "null" : Array.isArray(other) ? "an array" : `a ${typeof other}`}, not an object`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    fail("SAFETENSORS_HEADER_NOT_JSON", file, `header is not valid JSON (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) fail("SAFETENSORS_HEADER_NOT_OBJECT", file, "header JSON is not an object");
  // Unknown fields may nest arbitrarily deep; nothing later may walk (or stringify) them recursively.
  const scan = scanHeaderJson(text, MAX_SAFETENSORS_HEADER_DEPTH);
  if (scan.depth > MAX_SAFETENSORS_HEADER_DEPTH) fail("SAFETENSORS_HEADER_TOO_DEEP", file, `header JSON nests deeper than ${MAX_SAFETENSORS_HEADER_DEPTH} levels`);
  const seen = new Set<string>();
  for (const key of scan.keys) {
    if (seen.has(key)) fail("SAFETENSORS_DUPLICATE_NAME", file, `tensor name ${JSON.stringify(key)} appears twice in the header`);
    seen.add(key);
  }
  if (scan.nonInteger) {
    const { tensor, field, token } = scan.nonInteger;
    fail(field === "shape" ? "SAFETENSORS_BAD_SHAPE" : "SAFETENSORS_BAD_OFFSETS", file, `tensor ${JSON.stringify(tensor)} has ${field} value ${token.slice(0, 40)}, not an integer`);
  }

  const record = parsed as Record<string, unknown>;
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors: SafetensorsTensorEntry[] = [];
  const ends: number[] = [];
  for (const name of Object.keys(record)) {
    const value = record[name];
    // The reference refuses strings holding lone UTF-16 surrogates (possible only as \u escapes).
    if (hasLoneSurrogate(name)) fail("SAFETENSORS_BAD_NAME", file, `tensor name ${JSON.stringify(name)} holds a lone UTF-16 surrogate`);
    if (name === "__metadata__") {
      if (value === null) continue; // Option<HashMap> in the reference: null is no metadata
      if (typeof value !== "object" || Array.isArray(value)) fail("SAFETENSORS_BAD_METADATA", file, "__metadata__ is not an object of strings");
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") fail("SAFETENSORS_BAD_METADATA", file, `__metadata__ value for ${JSON.stringify(k)} is not a string`);
        if (hasLoneSurrogate(k) || hasLoneSurrogate(v)) fail("SAFETENSORS_BAD_METADATA", file, `__metadata__ entry ${JSON.stringify(k)} holds a lone UTF-16 surrogate`);
        metadata[k] = v;
      }
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) fail("SAFETENSORS_BAD_ENTRY", file, `entry ${JSON.stringify(name)} is not an object`);
    const entry = value as Record<string, unknown>;
    const dtype = entry.dtype;
    if (!isDType(dtype)) fail("SAFETENSORS_UNKNOWN_DTYPE", file, `tensor ${JSON.stringify(name)} has unknown dtype ${JSON.stringify(dtype)}`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) fail("SAFETENSORS_BAD_SHAPE", file, `tensor ${JSON.stringify(name)} has an invalid shape ${JSON.stringify(shape)}`);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !isNonNegativeInteger(offsets[0]) || !isNonNegativeInteger(offsets[1])) {
      fail("SAFETENSORS_BAD_OFFSETS", file, `tensor ${JSON.stringify(name)} has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail("SAFETENSORS_BAD_OFFSETS", file, `tensor ${JSON.stringify(name)} ends (${end}) before it begins (${begin})`);
    const expected = shapeElementCount(shape as number[]) * dtypeSize(dtype);
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      fail("SAFETENSORS_SIZE_MISMATCH", file, `tensor ${JSON.stringify(name)}: shape ${JSON.stringify(shape)} × ${dtype} needs ${expected} bytes but data_offsets give ${end - begin}`);
    }
    tensors.push({ name, dtype, shape: shape as number[], byteLength: end - begin, dataOffset: begin });
    ends.push(end);
  }

  const order = tensors.map((_, i) => i).sort((a, b) => tensors[a]!.dataOffset - tensors[b]!.dataOffset || ends[a]! - ends[b]!);
  let cursor = 0;
  const sorted: SafetensorsTensorEntry[] = [];
  for (const i of order) {
    const t = tensors[i]!;
    if (t.dataOffset !== cursor) {
      const what = t.dataOffset < cursor ? "overlaps the previous tensor" : "leaves a gap after the previous tensor";
      fail(t.dataOffset < cursor ? "SAFETENSORS_HEADER_OVERLAP" : "SAFETENSORS_HEADER_GAP", file, `tensor ${JSON.stringify(t.name)} at data offset ${t.dataOffset} ${what} (expected ${cursor})`);
    }
    cursor = ends[i]!;
    sorted.push(t);
  }
  const dataLength = fileSize - dataStart;
  if (cursor !== dataLength) {
    fail(
      cursor > dataLength ? "SAFETENSORS_TRUNCATED" : "SAFETENSORS_TRAILING_BYTES",
      file,
      cursor > dataLength ? `tensor data needs ${cursor} bytes but the file holds ${dataLength} after the header (truncated?)` : `file has ${dataLength - cursor} bytes after the last tensor`,
    );
  }
  return { headerLength, dataStart, metadata, tensors: sorted };
}
