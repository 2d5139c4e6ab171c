import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import * as zlib from "node:zlib";
import { openSafetensors, openSafetensorsHandle, orderedTap, readFully, throwIfAborted, type OutputByteTap, type ProgressCallback, type TensorDescriptor } from "@stmerge/core-tensors";
import { ConvertError } from "./convert-error.js";

/** Length and CRC-32 of a tensor's bytes (SHA-1 where Node lacks zlib.crc32): cheap enough to take of every byte written. */
export const digestOf: (bytes: Uint8Array) => string =
  typeof (zlib as { crc32?: unknown }).crc32 === "function"
    ? (bytes) => `${bytes.byteLength}:${(zlib as unknown as { crc32(b: Uint8Array): number }).crc32(bytes)}`
    : (bytes) => `${bytes.byteLength}:${createHash("sha1").update(bytes).digest("hex")}`;

/** An output still under its temp name, read through the handle that wrote it (see `AtomicFile.commit`'s `verify`). */
export interface WrittenFile {
  /** The output path, for messages. */
  readonly path: string;
  readonly handle: FileHandle;
}

/**
 * Re-reads the written output (through its temp file's handle before the rename, so what is
 * checked is what this run wrote; a path is opened by name) with the strict safetensors reader and compares every tensor's header and bytes with what was written.
 * `tap` sees every byte of the file in file order during this read (the header is written last, so the
 * output's hashes are taken here rather than while writing: same single read, no extra pass).
 * `expectedHead`: the header bytes a header-first writer hashed; the file's first bytes must equal them.
 */
export async function checkWrittenOutput(
  written_: string | WrittenFile,
  expected: readonly TensorDescriptor[],
  metadata: Readonly<Record<string, string>>,
  written: ReadonlyMap<string, string>,
  onProgress: ProgressCallback | undefined,
  signal?: AbortSignal,
  tap?: OutputByteTap,
  expectedHead?: Uint8Array,
): Promise<number> {
  const output = typeof written_ === "string" ? written_ : written_.path;
  const fail = (problem: string): never => {
    throw new ConvertError("CONVERT_VERIFY_FAILED", `${output}: output does not match the source (${problem}); output removed`, { file: output });
  };
  const source = typeof written_ === "string" ? await openSafetensors(output) : await openSafetensorsHandle(written_.handle, output);
  try {
    if (source.descriptors.length !== expected.length) fail(`${source.descriptors.length} tensors instead of ${expected.length}`);
    for (const [k, v] of Object.entries(metadata)) if (source.metadata[k] !== v) fail(`metadata ${k} differs`);
    for (const d of expected) {
      const got = source.get(d.name);
      if (!got) return fail(`tensor ${JSON.stringify(d.name)} is missing`);
      if (got.dtype !== d.dtype || JSON.stringify(got.shape) !== JSON.stringify(d.shape)) fail(`tensor ${JSON.stringify(d.name)} has ${got.dtype} ${JSON.stringify(got.shape)}`);
    }
    // Two buffers: the next tensor is read while this one is checksummed.
    const largest = expected.reduce((n, d) => Math.max(n, d.byteLength), 0);
    const buffers = [new Uint8Array(largest), new Uint8Array(largest)];
    const total = expected.reduce((n, d) => n + d.byteLength, 0);
    // Hashed while writing: the header on disk must be byte for byte the one that was hashed.
    if (expectedHead) {
      const head = await readHead(written_, expectedHead.byteLength);
      if (source.header.dataStart !== expectedHead.byteLength || Buffer.compare(head, expectedHead) !== 0) fail("header bytes differ from those written");
    }
    const tapped = tap ? orderedTap(tap) : undefined;
    if (tap && tapped) {
      const head = await readHead(written_, source.header.dataStart);
      await tap.start?.({ size: source.fileSize, head });
      await tapped.write(head, 0);
    }
    let done = 0;
    let pending = expected[0] ? source.read(expected[0].name, buffers[0]) : undefined;
    for (let i = 0; i < expected.length; i++) {
      const d = expected[i]!;
      const bytes = await pending!;
      throwIfAborted(signal, output, "read-back check");
      const next = expected[i + 1];
      pending = next ? source.read(next.name, buffers[(i + 1) % 2]) : undefined;
      pending?.catch(() => undefined);
      if (digestOf(bytes) !== written.get(d.name)) fail(`tensor ${JSON.stringify(d.name)} has different bytes`);
      await tapped?.write(bytes, source.fileOffsetOf(d.name));
      done += d.byteLength;
      onProgress?.({ phase: "verify", bytesDone: done, bytesTotal: total, tensor: d.name });
    }
    return source.fileSize;
  } catch (error) {
    if (error instanceof ConvertError || (error as { code?: unknown }).code === "ABORTED") throw error;
    throw new ConvertError("CONVERT_VERIFY_FAILED", `${output}: output could not be read back (${(error as Error).message}); output removed`, { file: output, cause: error });
  } finally {
    await source.close();
  }
}

/** The file's first `length` bytes (the 8-byte length and the JSON header). */
async function readHead(file: string | WrittenFile, length: number): Promise<Uint8Array> {
  const head = new Uint8Array(length);
  if (typeof file !== "string") {
    await readFully(file.handle, head, 0, length, 0, file.path);
    return head;
  }
  const handle = await open(file, "r");
  try {
    await readFully(handle, head, 0, length, 0, file);
    return head;
  } finally {
    await handle.close();
  }
}
