import { createHash } from "node:crypto";
import * as zlib from "node:zlib";
import { openSafetensors, type ProgressCallback, type TensorDescriptor } from "@stmerge/core-tensors";
import { ConvertError } from "./convert-error.js";

/** Length and CRC-32 of a tensor's bytes (SHA-1 where Node lacks zlib.crc32): cheap enough to take of every byte written. */
export const digestOf: (bytes: Uint8Array) => string =
  typeof (zlib as { crc32?: unknown }).crc32 === "function"
    ? (bytes) => `${bytes.byteLength}:${(zlib as unknown as { crc32(b: Uint8Array): number }).crc32(bytes)}`
    : (bytes) => `${bytes.byteLength}:${createHash("sha1").update(bytes).digest("hex")}`;

/** Re-reads the committed output with the strict safetensors reader and compares every tensor's header and bytes with what was written. */
export async function checkWrittenOutput(
  output: string,
  expected: readonly TensorDescriptor[],
  metadata: Readonly<Record<string, string>>,
  written: ReadonlyMap<string, string>,
  onProgress: ProgressCallback | undefined,
): Promise<number> {
  const fail = (problem: string): never => {
    throw new ConvertError("CONVERT_VERIFY_FAILED", `${output}: output does not match the source (${problem}); output removed`, { file: output });
  };
  const source = await openSafetensors(output);
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
    let done = 0;
    let pending = expected[0] ? source.read(expected[0].name, buffers[0]) : undefined;
    for (let i = 0; i < expected.length; i++) {
      const d = expected[i]!;
      const bytes = await pending!;
      const next = expected[i + 1];
      pending = next ? source.read(next.name, buffers[(i + 1) % 2]) : undefined;
      pending?.catch(() => undefined);
      if (digestOf(bytes) !== written.get(d.name)) fail(`tensor ${JSON.stringify(d.name)} has different bytes`);
      done += d.byteLength;
      onProgress?.({ phase: "verify", bytesDone: done, bytesTotal: total, tensor: d.name });
    }
    return source.fileSize;
  } catch (error) {
    if (error instanceof ConvertError) throw error;
    throw new ConvertError("CONVERT_VERIFY_FAILED", `${output}: output could not be read back (${(error as Error).message}); output removed`, { file: output, cause: error });
  } finally {
    await source.close();
  }
}
