import type { FileHandle } from "node:fs/promises";
import { readFully } from "@stmerge/core-tensors";
import type { CallSite } from "./build-from-global.js";
import { detectContainer, isTarHeader } from "./detect-container.js";
import { CheckpointFormatError, PickleError, type PickleViolation } from "./pickle-errors.js";
import { DEFAULT_PICKLE_LIMITS, PickleTruncatedError, runPickle, type AllocationBudget, type GlobalUse, type PickleLimits, type PickleRunResult } from "./pickle-vm.js";
import { PyDict, PyOpaque, PyStorage, type PyValue } from "./py-values.js";
import type { StorageLocation } from "./read-strided-tensor.js";
import { parseStoragePid } from "./storage-pid.js";
import { assertStored, locateZipData, readZipDirectory, readZipEntry, type ZipEntry } from "./zip-reader.js";

export type CheckpointFormat = "torch-zip" | "torch-legacy" | "pickle";

export interface LoadLimits extends PickleLimits {
  /** Largest pickle record read into memory (real SD checkpoints have a few hundred KB). */
  readonly maxPickleBytes: number;
}

export const DEFAULT_LOAD_LIMITS: LoadLimits = { ...DEFAULT_PICKLE_LIMITS, maxPickleBytes: 1 << 30 };

/** The unpickled structure of a checkpoint and where each storage's bytes live. */
export interface CheckpointStructure {
  readonly format: CheckpointFormat;
  readonly root: PyValue;
  readonly storages: ReadonlyMap<string, StorageLocation>;
  /** True when the zip's `byteorder` record says `big`: tensor bytes are swapped on read. */
  readonly bigEndian: boolean;
  readonly globals: readonly GlobalUse[];
  readonly violations: readonly PickleViolation[];
}

export interface LoadOptions {
  readonly limits?: Partial<LoadLimits>;
  /** Filled with every global as it is met (audits keep them when loading fails later). */
  readonly globalsSink?: GlobalUse[];
  /** What the file's pickles have charged against `maxAllocationBytes` (shared by all of them); tests read it. */
  readonly allocationBudget?: AllocationBudget;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

/** Reads the container and runs its pickles under the allowlist VM; storages are located, not read. */
export async function loadCheckpointStructure(handle: FileHandle, fileSize: number, file: string, options: LoadOptions = {}): Promise<CheckpointStructure> {
  const limits = { ...DEFAULT_LOAD_LIMITS, ...options.limits };
  const globals = options.globalsSink ?? [];
  const budget = options.allocationBudget ?? { used: 0 };
  const head = new Uint8Array(Math.min(fileSize, 512));
  await readFully(handle, head, 0, head.length, 0, file);
  const kind = detectContainer(head, fileSize, file);
  return kind === "zip" ? loadTorchZip(handle, fileSize, file, limits, globals, budget) : loadPickleFile(handle, fileSize, file, limits, globals, budget);
}

async function loadTorchZip(handle: FileHandle, fileSize: number, file: string, limits: LoadLimits, globals: GlobalUse[], budget: AllocationBudget): Promise<CheckpointStructure> {
  const dir = await readZipDirectory(handle, fileSize, file);
  // Like torch: the archive folder is the first entry's, and records are looked up ignoring case.
  const first = dir.names[0];
  const slash = first?.indexOf("/") ?? -1;
  if (first === undefined || slash <= 0) throw new CheckpointFormatError("ZIP_NOT_TORCH", `${file}: unsupported format, a zip archive whose records are not inside an archive folder (not a torch checkpoint)`, { file });
  const prefix = first.slice(0, slash + 1);
  if (dir.find(`${prefix}constants.pkl`) || dir.find(`${prefix}model.json`)) {
    throw new CheckpointFormatError("CHECKPOINT_UNSUPPORTED_FORMAT", `${file}: unsupported format, a TorchScript archive (holds code, not just weights)`, { file });
  }
  const pklEntry = dir.find(`${prefix}data.pkl`);
  if (!pklEntry) throw new CheckpointFormatError("ZIP_NOT_TORCH", `${file}: unsupported format, zip archive has no ${prefix}data.pkl record`, { file });
  let bigEndian = false;
  const byteorder = dir.find(`${prefix}byteorder`);
  if (byteorder) {
    // torch compares the bytes exactly and refuses anything but these two words.
    const text = latin1Text(await readZipEntry(handle, byteorder, fileSize, file, 64));
    if (text !== "little" && text !== "big") throw new CheckpointFormatError("ZIP_MALFORMED", `${file}: byteorder record says ${JSON.stringify(text)}, not "little" or "big"`, { file });
    bigEndian = text === "big";
  }
  const pickle = await readZipEntry(handle, pklEntry, fileSize, file, limits.maxPickleBytes);
  const used = new Map<string, ZipEntry>();
  const byKey = new Map<string, PyStorage>();
  const persistentLoad = (pid: PyValue, site: CallSite): PyValue => {
    const parsed = parseStoragePid(pid, site);
    if (parsed instanceof PyOpaque) return parsed;
    const cached = byKey.get(parsed.key);
    if (cached) return cached;
    const entry = dir.find(`${prefix}data/${parsed.key}`);
    if (!entry) throw new PickleError("PICKLE_MISSING_STORAGE", `${file}: storage ${JSON.stringify(parsed.key)} has no record ${prefix}data/${parsed.key}`, { file });
    assertStored(entry, file);
    const declared = parsed.numel * parsed.info.elementSize;
    if (entry.size !== declared) {
      throw new PickleError("PICKLE_STORAGE_SIZE", `${file}: storage ${JSON.stringify(parsed.key)} holds ${entry.size} bytes but the pickle declares ${declared}`, { file });
    }
    used.set(parsed.key, entry);
    const storage = new PyStorage(parsed.key, parsed.info.dtype, parsed.info.torchName, parsed.info.elementSize, declared, parsed.location);
    byKey.set(parsed.key, storage);
    return storage;
  };
  const run = runPickle(pickle, 0, { file, record: pklEntry.name, persistentLoad, limits, globalsSink: globals, allocationBudget: budget });
  const violations = [...run.violations];
  // torch unpickles only data.pkl, but any other pickle in the archive is scanned too (as picklescan
  // does): a file that carries a payload anywhere is not clean.
  for (const name of dir.names) {
    const entry = dir.entries.get(name)!;
    if (entry === pklEntry || !/\.pkl$/i.test(entry.rawName)) continue;
    const bytes = await readZipEntry(handle, entry, fileSize, file, limits.maxPickleBytes);
    const inert = (_pid: PyValue, site: CallSite): PyValue => new PyOpaque("persistent id", site.offset);
    const other = runPickle(bytes, 0, { file, record: entry.name, persistentLoad: inert, limits, globalsSink: globals, allocationBudget: budget });
    violations.push(...other.violations);
  }
  const storages = new Map<string, StorageLocation>();
  for (const [key, entry] of used) storages.set(key, { fileOffset: await locateZipData(handle, entry, fileSize, file), byteLength: entry.size, crc32: entry.crc32 });
  return { format: "torch-zip", root: run.value, storages, bigEndian, globals, violations };
}

function latin1Text(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

/** Runs one pickle that starts at `offset` in the file, reading more of the file while the pickle is truncated. */
async function runPickleInFile(
  handle: FileHandle,
  fileSize: number,
  offset: number,
  file: string,
  limits: LoadLimits,
  options: Omit<Parameters<typeof runPickle>[2], "file" | "limits">,
  firstWindow = 1 << 20,
): Promise<PickleRunResult & { readonly fileEnd: number }> {
  let length = Math.min(fileSize - offset, firstWindow);
  for (;;) {
    const bytes = new Uint8Array(length);
    await readFully(handle, bytes, 0, length, offset, file);
    const sink = options.globalsSink;
    const mark = sink?.length ?? 0;
    const charged = options.allocationBudget?.used ?? 0;
    try {
      const result = runPickle(bytes, 0, { ...options, file, limits });
      return { ...result, fileEnd: offset + result.end };
    } catch (error) {
      if (!(error instanceof PickleTruncatedError) || offset + length >= fileSize) throw error;
      if (length >= limits.maxPickleBytes) throw new PickleError("PICKLE_LIMIT", `${file}: ${options.record} is larger than ${limits.maxPickleBytes} bytes (resource limit)`, { file });
      sink?.splice(mark);
      if (options.allocationBudget) options.allocationBudget.used = charged;
      length = Math.min(fileSize - offset, length * 4, limits.maxPickleBytes);
    }
  }
}

/**
 * The legacy format (stacked pickles: magic, protocol, sys_info, object, storage keys, then raw
 * storages each after an 8-byte element count) or, when the first pickle is not the magic
 * number, a plain pickle file.
 */
async function loadPickleFile(handle: FileHandle, fileSize: number, file: string, limits: LoadLimits, globals: GlobalUse[], budget: AllocationBudget): Promise<CheckpointStructure> {
  const violations: PickleViolation[] = [];
  const first = await runPickleInFile(handle, fileSize, 0, file, limits, { record: "first pickle", globalsSink: globals, allocationBudget: budget }).catch((error: unknown) => {
    // The first bytes only looked like a pickle opcode; a stream that fails at once is not a pickle.
    if (error instanceof PickleError && error.code !== "PICKLE_LIMIT" && globals.length === 0) {
      throw new CheckpointFormatError("CHECKPOINT_UNSUPPORTED_FORMAT", `${file}: unsupported format, not a torch checkpoint or a readable pickle (${error.message.slice(file.length + 2)})`, { file, cause: error });
    }
    throw error;
  });
  for (const v of first.violations) violations.push(v);
  if (first.value !== LEGACY_MAGIC) {
    await scanTrailingPickles(handle, fileSize, first.fileEnd, file, limits, globals, budget, violations);
    return { format: "pickle", root: first.value, storages: new Map(), bigEndian: false, globals, violations };
  }
  const legacyError = (problem: string): CheckpointFormatError => new CheckpointFormatError("LEGACY_MALFORMED", `${file}: malformed legacy torch checkpoint, ${problem}`, { file });
  const protocol = await runPickleInFile(handle, fileSize, first.fileEnd, file, limits, { record: "protocol pickle", globalsSink: globals, allocationBudget: budget });
  for (const v of protocol.violations) violations.push(v);
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) throw legacyError(`protocol version ${String(protocol.value)} is not ${LEGACY_PROTOCOL_VERSION}`);
  const sysInfo = await runPickleInFile(handle, fileSize, protocol.fileEnd, file, limits, { record: "sys_info pickle", globalsSink: globals, allocationBudget: budget });
  for (const v of sysInfo.violations) violations.push(v);
  if (!(sysInfo.value instanceof PyDict)) throw legacyError("sys_info is not a dict");
  if (sysInfo.value.get("little_endian") === false) throw new CheckpointFormatError("CHECKPOINT_UNSUPPORTED_FORMAT", `${file}: unsupported format, a big-endian legacy checkpoint`, { file });

  const roots = new Map<string, PyStorage>();
  const views = new Map<string, PyStorage>();
  const persistentLoad = (pid: PyValue, site: CallSite): PyValue => {
    const parsed = parseStoragePid(pid, site);
    if (parsed instanceof PyOpaque) return parsed;
    let root = roots.get(parsed.key);
    if (!root) {
      root = new PyStorage(parsed.key, parsed.info.dtype, parsed.info.torchName, parsed.info.elementSize, parsed.numel * parsed.info.elementSize, parsed.location);
      roots.set(parsed.key, root);
    }
    if (!parsed.view) return root;
    const { key, offset, size } = parsed.view;
    const cached = views.get(key);
    if (cached) return cached;
    if ((offset + size) * root.elementSize > root.byteLength) throw legacyError(`storage view ${JSON.stringify(key)} lies outside storage ${JSON.stringify(root.key)}`);
    const view = new PyStorage(root.key, root.dtype, root.torchDType, root.elementSize, size * root.elementSize, root.location, offset * root.elementSize);
    views.set(key, view);
    return view;
  };
  const object = await runPickleInFile(handle, fileSize, sysInfo.fileEnd, file, limits, { record: "object pickle", persistentLoad, globalsSink: globals, allocationBudget: budget });
  for (const v of object.violations) violations.push(v);
  const keys = await runPickleInFile(handle, fileSize, object.fileEnd, file, limits, { record: "storage keys pickle", globalsSink: globals, allocationBudget: budget });
  for (const v of keys.violations) violations.push(v);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === "string")) throw legacyError("the storage key list is not a list of strings");
  const storages = new Map<string, StorageLocation>();
  let pos = keys.fileEnd;
  const count = new Uint8Array(8);
  for (const key of keys.value as string[]) {
    const root = roots.get(key);
    if (!root) throw legacyError(`storage ${JSON.stringify(key)} is listed but no tensor uses it`);
    if (pos + 8 > fileSize) throw legacyError(`the file ends before storage ${JSON.stringify(key)} (truncated)`);
    await readFully(handle, count, 0, 8, pos, file);
    const numel = new DataView(count.buffer).getBigInt64(0, true);
    const byteLength = BigInt(root.byteLength);
    if (numel * BigInt(root.elementSize) !== byteLength) throw legacyError(`storage ${JSON.stringify(key)} has wrong byte size: expected ${byteLength}, got ${numel * BigInt(root.elementSize)}`);
    if (pos + 8 + root.byteLength > fileSize) throw legacyError(`the file ends inside storage ${JSON.stringify(key)} (truncated)`);
    storages.set(key, { fileOffset: pos + 8, byteLength: root.byteLength });
    pos += 8 + root.byteLength;
  }
  for (const key of roots.keys()) if (!storages.has(key)) throw legacyError(`storage ${JSON.stringify(key)} is used but missing from the file`);
  await scanTrailingPickles(handle, fileSize, pos, file, limits, globals, budget, violations);
  return { format: "torch-legacy", root: object.value, storages, bigEndian: false, globals, violations };
}

/** Most pickle streams scanned after the end of what torch reads (each is at least two bytes). */
export const MAX_TRAILING_PICKLES = 1000;

/**
 * Bytes after the last pickle torch reads are scanned the way picklescan scans them: as further
 * pickle streams, each run through the same VM (their globals count; their persistent ids are
 * inert). Bytes that are not a pickle are refused as suspicious (`PICKLE_TRAILING_DATA`): another
 * loader (`pickle.load` in a loop, a polyglot reader) could see something there that we did not.
 */
async function scanTrailingPickles(
  handle: FileHandle,
  fileSize: number,
  offset: number,
  file: string,
  limits: LoadLimits,
  globals: GlobalUse[],
  budget: AllocationBudget,
  violations: PickleViolation[],
): Promise<void> {
  const inert = (_pid: PyValue, site: CallSite): PyValue => new PyOpaque("persistent id", site.offset);
  for (let n = 1; offset < fileSize; n++) {
    if (n > MAX_TRAILING_PICKLES) {
      throw new PickleError("PICKLE_LIMIT", `${file}: more than ${MAX_TRAILING_PICKLES} pickle streams after byte ${offset} (resource limit)`, { file });
    }
    const record = `trailing pickle ${n} at byte ${offset}`;
    let next: PickleRunResult & { readonly fileEnd: number };
    try {
      next = await runPickleInFile(handle, fileSize, offset, file, limits, { record, persistentLoad: inert, globalsSink: globals, allocationBudget: budget }, 64 << 10);
    } catch (error) {
      if (!(error instanceof PickleError) || error.code === "PICKLE_LIMIT") throw error;
      throw new CheckpointFormatError("PICKLE_TRAILING_DATA", `${file}: refused, ${fileSize - offset} bytes after the pickle that ends at byte ${offset} are not a pickle (suspicious trailing data)`, { file, cause: error });
    }
    violations.push(...next.violations);
    offset = next.fileEnd;
  }
}

/**
 * Runs the bytes from offset 0 through the VM as one pickle, only to see its globals: what
 * `torch.load` would do with a file that is not a zip or tar (it calls `pickle.load` on it), used
 * by audits of files that otherwise look like something else (a safetensors header can also be a
 * pickle). Globals land in `options.globalsSink`; a malformed stream just ends the scan.
 */
export async function scanAsPickle(handle: FileHandle, fileSize: number, file: string, options: LoadOptions = {}): Promise<void> {
  const limits = { ...DEFAULT_LOAD_LIMITS, ...options.limits };
  const head = new Uint8Array(Math.min(fileSize, 512));
  await readFully(handle, head, 0, head.length, 0, file);
  // torch reads these as zip or tar, never as a pickle.
  if ((head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) || isTarHeader(head)) return;
  const inert = (_pid: PyValue, site: CallSite): PyValue => new PyOpaque("persistent id", site.offset);
  try {
    await runPickleInFile(handle, fileSize, 0, file, limits, { record: "bytes read as a pickle", persistentLoad: inert, globalsSink: options.globalsSink ?? [], allocationBudget: options.allocationBudget ?? { used: 0 } }, 64 << 10);
  } catch (error) {
    if (!(error instanceof PickleError)) throw error;
  }
}
