import { crc32, openSafetensorsHandle, readFully, type TensorDescriptor } from "@stmerge/core-tensors";
import type { FileHandle } from "node:fs/promises";
import { ConvertError } from "./convert-error.js";

/** An output still under its temp name, read through the handle that wrote it (see `AtomicFile.commit`'s `verify`). */
export interface WrittenFile {
  /** The output path, for messages. */
  readonly path: string;
  readonly handle: FileHandle;
}

/** The typed failure of every check of the output; the caller removes the temp file. */
function outputMismatch(output: string, problem: string, cause?: unknown): ConvertError {
  return new ConvertError("CONVERT_VERIFY_FAILED", `${output}: output does not match the source (${problem}); output removed`, { file: output, ...(cause === undefined ? {} : { cause }) });
}

/**
 * Reads the written output's header back through its temp file's handle (before the rename, so
 * what is checked is what this run wrote) with the strict safetensors reader: it must parse, hold
 * exactly the expected tensors (dtype, shape) and metadata, and be byte for byte `expectedHead`,
 * the header whose layout the tensors were written to and whose bytes the output's hashes took.
 * The tensors' bytes are checked as they are written (`checkTensorDigest`, `checkWrittenTensor`).
 * Returns the file's size.
 */
export async function checkWrittenHeader(file: WrittenFile, expected: readonly TensorDescriptor[], metadata: Readonly<Record<string, string>>, expectedHead: Uint8Array): Promise<number> {
  const { path: output } = file;
  const fail = (problem: string): never => {
    throw outputMismatch(output, problem);
  };
  let source: Awaited<ReturnType<typeof openSafetensorsHandle>>;
  try {
    source = await openSafetensorsHandle(file.handle, output);
  } catch (error) {
    throw new ConvertError("CONVERT_VERIFY_FAILED", `${output}: output could not be read back (${(error as Error).message}); output removed`, { file: output, cause: error });
  }
  try {
    if (source.descriptors.length !== expected.length) fail(`${source.descriptors.length} tensors instead of ${expected.length}`);
    for (const [k, v] of Object.entries(metadata)) if (source.metadata[k] !== v) fail(`metadata ${k} differs`);
    for (const d of expected) {
      const got = source.get(d.name);
      if (!got) return fail(`tensor ${JSON.stringify(d.name)} is missing`);
      if (got.dtype !== d.dtype || JSON.stringify(got.shape) !== JSON.stringify(d.shape)) fail(`tensor ${JSON.stringify(d.name)} has ${got.dtype} ${JSON.stringify(got.shape)}`);
    }
    if (source.header.dataStart !== expectedHead.byteLength) fail("header bytes differ from those written");
    const head = new Uint8Array(expectedHead.byteLength);
    await readFully(file.handle, head, 0, head.byteLength, 0, output);
    if (Buffer.compare(head, expectedHead) !== 0) fail("header bytes differ from those written");
    return source.fileSize;
  } finally {
    await source.close();
  }
}

/**
 * A tensor's bytes as handed to the writer against a digest of its source: the CRC-32 its zip
 * checkpoint recorded for them. Catches a wrong or damaged read of the input (and a buffer reused
 * too early) without reading the output again.
 */
export function checkTensorDigest(output: string, name: string, crc: number, recordedCrc: number): void {
  if (crc >>> 0 !== recordedCrc >>> 0) throw outputMismatch(output, `tensor ${JSON.stringify(name)} has different bytes from the CRC-32 its checkpoint records`);
}

const READ_BACK_CHUNK = 16 * 1024 * 1024;

/**
 * A tensor with no source digest to compare with (cast, a view of a storage, a legacy or pickle
 * file): its bytes are read back from the output at their offset (the writer's readWritten: from
 * the disk when written past the page cache) and their CRC-32 compared with that of the bytes
 * handed to the writer.
 */
export async function checkWrittenTensor(
  output: string,
  readWritten: (into: Uint8Array, offset: number) => Promise<Uint8Array>,
  tensor: { readonly name: string; readonly offset: number; readonly byteLength: number; readonly crc: number },
  buffer: Uint8Array,
): Promise<void> {
  let crc = 0;
  for (let at = 0; at < tensor.byteLength; ) {
    const length = Math.min(buffer.byteLength, tensor.byteLength - at);
    crc = crc32(await readWritten(buffer.subarray(0, length), tensor.offset + at), crc);
    at += length;
  }
  if (crc !== tensor.crc >>> 0) throw outputMismatch(output, `tensor ${JSON.stringify(tensor.name)} has different bytes`);
}

/** A buffer for `checkWrittenTensor`'s chunks. */
export function readBackBuffer(): Uint8Array {
  return new Uint8Array(READ_BACK_CHUNK);
}
