import type { FileHandle } from "node:fs/promises";
import { readFully } from "@stmerge/core-tensors";
import { CheckpointFormatError } from "./pickle-errors.js";

/** One entry of a zip archive, located by its central directory record. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = STORED; anything else is refused when read. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
  /** File offset of the entry's first data byte (from the local header, as torch does). */
  readonly dataOffset: number;
}

export interface ZipDirectory {
  /** Entries by name. A Map: names are data, never paths or object keys. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** Names in central-directory order. */
  readonly names: readonly string[];
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const MAX_ENTRIES = 1_000_000;
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;

function bad(file: string, problem: string): CheckpointFormatError {
  return new CheckpointFormatError("ZIP_MALFORMED", `${file}: malformed zip archive, ${problem}`, { file });
}

function u64(view: DataView, at: number, file: string, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(file, `${what} is out of range`);
  return Number(v);
}

/**
 * Reads a zip archive's directory: end-of-central-directory record (ZIP64 when present), every
 * central directory entry, and each entry's local header to find where its data begins. Sizes
 * and offsets are checked against the file size; CRCs are not verified (torch.load ignores them).
 */
export async function readZipDirectory(handle: FileHandle, fileSize: number, file: string): Promise<ZipDirectory> {
  if (fileSize < 22) throw bad(file, "too short for an end-of-central-directory record");
  const tailLength = Math.min(fileSize, 22 + 65535);
  const tailStart = fileSize - tailLength;
  const tail = new Uint8Array(tailLength);
  await readFully(handle, tail, 0, tailLength, tailStart, file);
  const tv = new DataView(tail.buffer);
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD_SIGNATURE && i + 22 + tv.getUint16(i + 20, true) <= tailLength) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad(file, "no end-of-central-directory record (truncated?)");
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
  if (entryCount > MAX_ENTRIES) throw bad(file, `${entryCount} entries exceed the limit of ${MAX_ENTRIES}`);
  if (cdSize > MAX_CENTRAL_DIRECTORY || cdOffset + cdSize > fileSize) throw bad(file, "central directory lies outside the file");

  const cd = new Uint8Array(cdSize);
  await readFully(handle, cd, 0, cdSize, cdOffset, file);
  const cv = new DataView(cd.buffer);
  const entries = new Map<string, ZipEntry>();
  const names: string[] = [];
  const decoder = new TextDecoder("utf-8");
  const local = new Uint8Array(30);
  const lv = new DataView(local.buffer);
  let at = 0;
  for (let n = 0; n < entryCount; n++) {
    if (at + 46 > cdSize || cv.getUint32(at, true) !== CENTRAL_SIGNATURE) throw bad(file, `central directory entry ${n} is damaged`);
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
    const name = decoder.decode(cd.subarray(at + 46, at + 46 + nameLength));
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
    if (localHeaderOffset + 30 > fileSize) throw bad(file, `entry ${JSON.stringify(name)} has its header outside the file`);
    await readFully(handle, local, 0, 30, localHeaderOffset, file);
    if (lv.getUint32(0, true) !== LOCAL_SIGNATURE) throw bad(file, `entry ${JSON.stringify(name)} has a damaged local header`);
    const dataOffset = localHeaderOffset + 30 + lv.getUint16(26, true) + lv.getUint16(28, true);
    if (dataOffset + compressedSize > fileSize) throw bad(file, `entry ${JSON.stringify(name)} (${compressedSize} bytes) runs past the end of the file`);
    if (entries.has(name)) throw bad(file, `entry ${JSON.stringify(name)} appears twice`);
    entries.set(name, { name, method, compressedSize, size, crc32, localHeaderOffset, dataOffset });
    names.push(name);
    at = end;
  }
  return { entries, names };
}

/** Reads a whole (small) STORED entry into memory. */
export async function readZipEntry(handle: FileHandle, entry: ZipEntry, file: string, maxBytes: number): Promise<Uint8Array> {
  assertStored(entry, file);
  if (entry.size > maxBytes) {
    throw new CheckpointFormatError("CHECKPOINT_LIMIT", `${file}: record ${JSON.stringify(entry.name)} is ${entry.size} bytes, over the ${maxBytes}-byte limit`, { file });
  }
  const out = new Uint8Array(entry.size);
  await readFully(handle, out, 0, entry.size, entry.dataOffset, file);
  return out;
}

export function assertStored(entry: ZipEntry, file: string): void {
  if (entry.method !== 0 || entry.compressedSize !== entry.size) {
    throw new CheckpointFormatError("ZIP_COMPRESSED_ENTRY", `${file}: record ${JSON.stringify(entry.name)} is compressed (method ${entry.method}); only stored entries are supported, as torch writes them`, { file });
  }
}
