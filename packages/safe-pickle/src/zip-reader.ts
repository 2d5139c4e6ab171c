import type { FileHandle } from "node:fs/promises";
import { inflateRawSync } from "node:zlib";
import { readFully } from "@stmerge/core-tensors";
import { CheckpointFormatError } from "./pickle-errors.js";

/** One entry of a zip archive, located by its central directory record. */
export interface ZipEntry {
  /** The name as UTF-8 text, for messages. */
  readonly name: string;
  /** The name's bytes as latin-1 text: its identity, compared like torch's zip reader compares bytes. */
  readonly rawName: string;
  /** 0 = STORED, 8 = DEFLATE (inflated within a budget); anything else is refused when read. */
  readonly method: number;
  readonly flags: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
}

export interface ZipDirectory {
  /** Entries by exact name. A Map: names are data, never paths or object keys. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** Names in central-directory order. */
  readonly names: readonly string[];
  /** Looks a name up ignoring ASCII case, as torch's reader (miniz without the case-sensitive flag) does. */
  find(name: string): ZipEntry | undefined;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
/** Torch writes one record per storage; real checkpoints hold thousands. More is refused before the directory is read. */
export const MAX_ZIP_ENTRIES = 250_000;
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;

function bad(file: string, problem: string): CheckpointFormatError {
  return new CheckpointFormatError("ZIP_MALFORMED", `${file}: malformed zip archive, ${problem}`, { file });
}

/** Two readers could see two different archives in these bytes: audit calls such a file unsafe. */
function ambiguous(file: string, problem: string): CheckpointFormatError {
  return new CheckpointFormatError("ZIP_AMBIGUOUS", `${file}: refused, ambiguous zip archive: ${problem}`, { file });
}

function u64(view: DataView, at: number, file: string, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(file, `${what} is out of range`);
  return Number(v);
}

const latin1Decoder = new TextDecoder("latin1");
const utf8Decoder = new TextDecoder("utf-8");

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** ASCII-only lower case, like miniz's MZ_TOLOWER. */
function foldCase(raw: string): string {
  return raw.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** A lookup name (JS text) as the latin-1 spelling of its UTF-8 bytes, the form `rawName` has. */
function rawOf(name: string): string {
  return latin1(new TextEncoder().encode(name));
}

/**
 * Reads a zip archive's directory: the end-of-central-directory record (ZIP64 when present) and
 * every central directory entry, in one read. Refused as ambiguous: more than one end record,
 * names equal when case is ignored (torch looks names up that way), duplicate names. Local
 * headers are read only for the entries used (`locateZipData`), so a directory of many entries
 * costs one read. CRCs are not verified (torch.load ignores them).
 */
export async function readZipDirectory(handle: FileHandle, fileSize: number, file: string): Promise<ZipDirectory> {
  if (fileSize < 22) throw bad(file, "too short for an end-of-central-directory record");
  const tailLength = Math.min(fileSize, 22 + 65535);
  const tailStart = fileSize - tailLength;
  const tail = new Uint8Array(tailLength);
  await readFully(handle, tail, 0, tailLength, tailStart, file);
  const tv = new DataView(tail.buffer);
  // torch's reader (miniz) takes the last signature with room for a record after it.
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad(file, "no end-of-central-directory record (truncated?)");
  // Another record that reads as a whole end record means other readers may pick another directory.
  for (let i = eocd - 1; i >= 0; i--) {
    if (tv.getUint32(i, true) !== EOCD_SIGNATURE || i + 22 > tailLength) continue;
    const disks = tv.getUint16(i + 4, true) === 0 && tv.getUint16(i + 6, true) === 0;
    const counts = tv.getUint16(i + 8, true) === tv.getUint16(i + 10, true);
    const within = tv.getUint32(i + 16, true) + tv.getUint32(i + 12, true) <= tailStart + i;
    if (disks && counts && within) throw ambiguous(file, "it has more than one end-of-central-directory record");
  }
  let entryCount = tv.getUint16(eocd + 10, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  if (tv.getUint16(eocd + 4, true) !== 0 || tv.getUint16(eocd + 6, true) !== 0) throw bad(file, "multi-disk archives are not supported");

  const locatorAt = tailStart + eocd - 20;
  if (locatorAt >= 0) {
    const locator = new Uint8Array(20);
    await readFully(handle, locator, 0, 20, locatorAt, file);
    const lv = new DataView(locator.buffer);
    if (lv.getUint32(0, true) === ZIP64_LOCATOR_SIGNATURE) {
      const z64At = u64(lv, 8, file, "ZIP64 record offset");
      if (z64At + 56 > fileSize) throw bad(file, "ZIP64 end record lies outside the file");
      const z64 = new Uint8Array(56);
      await readFully(handle, z64, 0, 56, z64At, file);
      const zv = new DataView(z64.buffer);
      if (zv.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE) throw bad(file, "ZIP64 end record has a wrong signature");
      entryCount = u64(zv, 32, file, "ZIP64 entry count");
      cdSize = u64(zv, 40, file, "ZIP64 central directory size");
      cdOffset = u64(zv, 48, file, "ZIP64 central directory offset");
    }
  }
  if (entryCount > MAX_ZIP_ENTRIES) {
    throw new CheckpointFormatError("CHECKPOINT_LIMIT", `${file}: zip archive declares ${entryCount} entries, over the limit of ${MAX_ZIP_ENTRIES} (resource limit)`, { file });
  }
  if (cdSize > MAX_CENTRAL_DIRECTORY || cdOffset + cdSize > fileSize) throw bad(file, "central directory lies outside the file");

  const cd = new Uint8Array(cdSize);
  await readFully(handle, cd, 0, cdSize, cdOffset, file);
  const cv = new DataView(cd.buffer);
  const entries = new Map<string, ZipEntry>();
  const byFolded = new Map<string, ZipEntry>();
  const names: string[] = [];
  let at = 0;
  for (let n = 0; n < entryCount; n++) {
    if (at + 46 > cdSize || cv.getUint32(at, true) !== CENTRAL_SIGNATURE) throw bad(file, `central directory entry ${n} is damaged`);
    const flags = cv.getUint16(at + 8, true);
    const method = cv.getUint16(at + 10, true);
    const crc32 = cv.getUint32(at + 16, true);
    let compressedSize = cv.getUint32(at + 20, true);
    let size = cv.getUint32(at + 24, true);
    const nameLength = cv.getUint16(at + 28, true);
    const extraLength = cv.getUint16(at + 30, true);
    const commentLength = cv.getUint16(at + 32, true);
    let localHeaderOffset = cv.getUint32(at + 42, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > cdSize) throw bad(file, `central directory entry ${n} overruns the directory`);
    const nameBytes = cd.subarray(at + 46, at + 46 + nameLength);
    // Torch's names are ASCII: spelled out directly, without a decoder call per entry.
    let ascii = true;
    for (let i = 0; i < nameBytes.length; i++) if (nameBytes[i]! >= 0x80) ascii = false;
    const rawName = ascii ? String.fromCharCode.apply(null, nameBytes as unknown as number[]) : latin1Decoder.decode(nameBytes);
    const name = ascii ? rawName : utf8Decoder.decode(nameBytes);
    // ZIP64 extended information: 64-bit values appear only for fields saturated at 0xFFFFFFFF.
    let x = at + 46 + nameLength;
    const extraEnd = x + extraLength;
    while (x + 4 <= extraEnd) {
      const id = cv.getUint16(x, true);
      const len = cv.getUint16(x + 2, true);
      if (x + 4 + len > extraEnd) break;
      if (id === 0x0001) {
        let f = x + 4;
        const fieldEnd = f + len;
        if (size === 0xffffffff && f + 8 <= fieldEnd) { size = u64(cv, f, file, "ZIP64 size"); f += 8; }
        if (compressedSize === 0xffffffff && f + 8 <= fieldEnd) { compressedSize = u64(cv, f, file, "ZIP64 size"); f += 8; }
        if (localHeaderOffset === 0xffffffff && f + 8 <= fieldEnd) { localHeaderOffset = u64(cv, f, file, "ZIP64 offset"); f += 8; }
      }
      x += 4 + len;
    }
    if (localHeaderOffset + 30 + nameLength + compressedSize > fileSize) throw bad(file, `entry ${JSON.stringify(name)} (${compressedSize} bytes) runs past the end of the file`);
    const folded = ascii ? rawName.toLowerCase() : foldCase(rawName);
    const twin = byFolded.get(folded);
    if (twin) {
      throw ambiguous(file, twin.rawName === rawName ? `entry ${JSON.stringify(name)} appears twice` : `entries ${JSON.stringify(twin.name)} and ${JSON.stringify(name)} differ only by case (torch matches names ignoring case)`);
    }
    const entry: ZipEntry = { name, rawName, method, flags, compressedSize, size, crc32, localHeaderOffset };
    byFolded.set(folded, entry);
    entries.set(name, entry);
    names.push(name);
    at = end;
  }
  return { entries, names, find: (lookup) => byFolded.get(foldCase(rawOf(lookup))) };
}

/**
 * Reads an entry's local header, checks that it agrees with the central directory (name, method
 * and, unless a data descriptor follows, sizes), and returns where its data begins: 30 + name +
 * extra bytes after the header, as torch computes it.
 */
export async function locateZipData(handle: FileHandle, entry: ZipEntry, fileSize: number, file: string): Promise<number> {
  const nameLength = entry.rawName.length;
  const header = new Uint8Array(30 + nameLength);
  if (entry.localHeaderOffset + header.length > fileSize) throw bad(file, `entry ${JSON.stringify(entry.name)} has its header outside the file`);
  await readFully(handle, header, 0, header.length, entry.localHeaderOffset, file);
  const lv = new DataView(header.buffer);
  if (lv.getUint32(0, true) !== LOCAL_SIGNATURE) throw bad(file, `entry ${JSON.stringify(entry.name)} has a damaged local header`);
  const disagree = (what: string): CheckpointFormatError => ambiguous(file, `the local header of ${JSON.stringify(entry.name)} disagrees with the central directory (${what})`);
  const localNameLength = lv.getUint16(26, true);
  if (localNameLength !== nameLength || latin1Decoder.decode(header.subarray(30)) !== entry.rawName) throw disagree("name");
  if (lv.getUint16(8, true) !== entry.method) throw disagree("compression method");
  const localCompressed = lv.getUint32(18, true);
  const localSize = lv.getUint32(22, true);
  const descriptor = (lv.getUint16(6, true) & 0x8) !== 0;
  if (!descriptor) {
    if (localCompressed !== 0xffffffff && localCompressed !== entry.compressedSize) throw disagree("compressed size");
    if (localSize !== 0xffffffff && localSize !== entry.size) throw disagree("size");
  }
  const dataOffset = entry.localHeaderOffset + 30 + localNameLength + lv.getUint16(28, true);
  if (dataOffset + entry.compressedSize > fileSize) throw bad(file, `entry ${JSON.stringify(entry.name)} (${entry.compressedSize} bytes) runs past the end of the file`);
  return dataOffset;
}

/**
 * Reads a whole (small) entry into memory: STORED as is, DEFLATE inflated with its output capped
 * at the declared size (itself at most `maxBytes`), so a zip bomb costs at most `maxBytes`.
 */
export async function readZipEntry(handle: FileHandle, entry: ZipEntry, fileSize: number, file: string, maxBytes: number): Promise<Uint8Array> {
  if (entry.method !== 0 && entry.method !== 8) {
    throw new CheckpointFormatError("ZIP_COMPRESSED_ENTRY", `${file}: record ${JSON.stringify(entry.name)} uses compression method ${entry.method}; only stored and deflated records are read, as torch reads them`, { file });
  }
  if (entry.size > maxBytes) {
    throw new CheckpointFormatError("CHECKPOINT_LIMIT", `${file}: record ${JSON.stringify(entry.name)} is ${entry.size} bytes, over the ${maxBytes}-byte limit`, { file });
  }
  const dataOffset = await locateZipData(handle, entry, fileSize, file);
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size) throw bad(file, `stored record ${JSON.stringify(entry.name)} has two different sizes`);
    const out = new Uint8Array(entry.size);
    await readFully(handle, out, 0, entry.size, dataOffset, file);
    return out;
  }
  // Deflate never grows data by more than ~0.1% plus a few bytes per block.
  if (entry.compressedSize > entry.size + (entry.size >> 8) + 1024) throw bad(file, `deflated record ${JSON.stringify(entry.name)} is larger than its data`);
  const compressed = new Uint8Array(entry.compressedSize);
  await readFully(handle, compressed, 0, compressed.length, dataOffset, file);
  let out: Uint8Array;
  try {
    out = inflateRawSync(compressed, { maxOutputLength: Math.max(entry.size, 1) });
  } catch (error) {
    const tooLarge = (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
    throw bad(file, tooLarge ? `deflated record ${JSON.stringify(entry.name)} inflates past its declared ${entry.size} bytes` : `deflated record ${JSON.stringify(entry.name)} does not inflate (${(error as Error).message})`);
  }
  if (out.byteLength !== entry.size) throw bad(file, `deflated record ${JSON.stringify(entry.name)} inflates to ${out.byteLength} bytes, not the declared ${entry.size}`);
  return out;
}

/** Storages are read in place (positioned reads of their bytes), so they must be stored as is. */
export function assertStored(entry: ZipEntry, file: string): void {
  if (entry.method !== 0 || entry.compressedSize !== entry.size) {
    throw new CheckpointFormatError("ZIP_COMPRESSED_ENTRY", `${file}: record ${JSON.stringify(entry.name)} is compressed (method ${entry.method}); only stored entries are supported, as torch writes them`, { file });
  }
}
