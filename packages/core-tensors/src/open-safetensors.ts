import type { FileHandle } from "node:fs/promises";
import { SafetensorsError, TensorIoError } from "./errors.js";
import { fileIdentityOf, openFileForRead, type FileIdentity } from "./open-file-for-read.js";
import { parseSafetensorsHeader, parseSafetensorsHeaderLength, type SafetensorsHeader, type SafetensorsTensorEntry } from "./parse-safetensors-header.js";
import { readFully } from "./read-fully.js";
import { sniffFile } from "./sniff-file-kind.js";
import type { TensorDescriptor, TensorSource } from "./tensor-source.js";

/** A safetensors file opened for positioned reads; implements `TensorSource`. */
export interface SafetensorsSource extends TensorSource {
  readonly header: SafetensorsHeader;
  readonly fileSize: number;
  /** Absolute file offset of a tensor's first byte. */
  fileOffsetOf(name: string): number;
}

/** Reads and validates the header of a safetensors file; tensor data is not touched. */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  const source = await openSafetensors(path);
  await source.close();
  return source.header;
}

export async function openSafetensors(path: string): Promise<SafetensorsSource> {
  const { handle, stats } = await openFileForRead(path);
  try {
    return await openOn(handle, fileIdentityOf(stats), path, true);
  } catch (error) {
    throw (await notSafetensors(error, path)) ?? error;
  }
}

// Header errors that mean "some other kind of file", where "header length 5787614379 exceeds
// the limit" would tell the user nothing: the file is sniffed and named for what it looks like.
const UNPARSABLE = new Set(["SAFETENSORS_TOO_SMALL", "SAFETENSORS_HEADER_TOO_LARGE", "SAFETENSORS_HEADER_TRUNCATED", "SAFETENSORS_HEADER_NOT_UTF8", "SAFETENSORS_HEADER_NOT_JSON"]);

async function notSafetensors(error: unknown, path: string): Promise<SafetensorsError | undefined> {
  if (!(error instanceof SafetensorsError) || !UNPARSABLE.has(error.code)) return undefined;
  const sniffed = await sniffFile(path).catch(() => undefined);
  if (!sniffed || sniffed.kind === "safetensors" || sniffed.kind === "unknown" || sniffed.kind === "empty") return undefined;
  return new SafetensorsError("NOT_SAFETENSORS", `${path}: not a safetensors file (looks like ${sniffed.looksLike})`, { file: path, cause: error, details: { looksLike: sniffed.kind } });
}

/**
 * Reads a safetensors file through a handle the caller holds (e.g. an output's temp file before
 * it is renamed into place, so a read-back check sees exactly the bytes this run wrote, whatever
 * another process does to the path). `close()` leaves the handle open. `path` names it in errors.
 */
export async function openSafetensorsHandle(handle: FileHandle, path: string): Promise<SafetensorsSource> {
  const stats = await handle.stat();
  return openOn(handle, fileIdentityOf(stats), path, false);
}

async function openOn(handle: FileHandle, identity: FileIdentity, path: string, ownsHandle: boolean): Promise<SafetensorsSource> {
  const fileSize = identity.size;
  try {
    const prefix = new Uint8Array(8);
    if (fileSize >= 8) await readFully(handle, prefix, 0, 8, 0, path);
    const headerLength = parseSafetensorsHeaderLength(prefix, fileSize, path);
    const headerBytes = new Uint8Array(headerLength);
    await readFully(handle, headerBytes, 0, headerLength, 8, path);
    const header = parseSafetensorsHeader(headerBytes, fileSize, path);
    return new SafetensorsFileSource(path, handle, header, identity, ownsHandle);
  } catch (error) {
    if (ownsHandle) await handle.close().catch(() => undefined);
    throw error;
  }
}

class SafetensorsFileSource implements SafetensorsSource {
  readonly descriptors: readonly TensorDescriptor[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly fileSize: number;
  readonly #byName = new Map<string, SafetensorsTensorEntry>();
  #closed = false;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    readonly header: SafetensorsHeader,
    readonly fileIdentity: FileIdentity,
    private readonly ownsHandle = true,
  ) {
    this.fileSize = fileIdentity.size;
    for (const t of header.tensors) this.#byName.set(t.name, t);
    this.descriptors = header.tensors.map(({ name, dtype, shape, byteLength }) => ({ name, dtype, shape, byteLength }));
    this.metadata = header.metadata;
  }

  get(name: string): TensorDescriptor | undefined {
    const t = this.#byName.get(name);
    return t && { name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength };
  }

  #entry(name: string): SafetensorsTensorEntry {
    if (this.#closed) throw new TensorIoError("SOURCE_CLOSED", `${this.path}: read after close`, { file: this.path });
    const t = this.#byName.get(name);
    if (!t) throw new SafetensorsError("TENSOR_NOT_FOUND", `${this.path}: no tensor named ${JSON.stringify(name)}`, { file: this.path });
    return t;
  }

  fileOffsetOf(name: string): number {
    return this.header.dataStart + this.#entry(name).dataOffset;
  }

  // async so a bad name rejects the promise rather than throwing synchronously.
  async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
    return this.readRange(name, 0, this.#entry(name).byteLength, into);
  }

  async readRange(name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.#entry(name);
    if (!(start >= 0 && end >= start && end <= t.byteLength)) {
      throw new TensorIoError("RANGE_OUT_OF_BOUNDS", `${this.path}: range ${start}..${end} is outside tensor ${JSON.stringify(name)} (${t.byteLength} bytes)`, { file: this.path });
    }
    const length = end - start;
    if (into && into.byteLength < length) throw new TensorIoError("BUFFER_TOO_SMALL", `${this.path}: buffer of ${into.byteLength} bytes cannot hold ${length}`, { file: this.path });
    const target = into ? into.subarray(0, length) : new Uint8Array(length);
    await readFully(this.handle, target, 0, length, this.header.dataStart + t.dataOffset + start, this.path);
    return target;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.ownsHandle) await this.handle.close();
  }
}
