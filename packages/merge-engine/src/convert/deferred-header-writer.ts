import { createAtomicFile, type CommitOptions, fileSystemError, planSafetensorsLayout, SafetensorsError, TensorIoError, writeFully, type SafetensorsLayout, type TensorDescriptor } from "@stmerge/core-tensors";

/**
 * A safetensors writer whose header is written last, so metadata known only at the end (the
 * input's SHA-256, hashed in parallel) can go in it. The layout is planned with provisional
 * metadata of the same byte length; `finish` refuses metadata that would change the layout.
 * Like core-tensors' writer it writes to a temp file that appears at `path` only on commit.
 */
export interface DeferredHeaderWriter {
  /** The planned layout: header bytes for the provisional metadata, tensor offsets, total size. */
  readonly layout: SafetensorsLayout;
  write(name: string, bytes: Uint8Array): Promise<void>;
  /** Writes the header and commits; `verify` reads the temp file through its own handle before the rename. */
  finish(metadata: Readonly<Record<string, string>>, verify?: CommitOptions["verify"]): Promise<void>;
  abort(): Promise<void>;
}

export async function createDeferredHeaderWriter(
  path: string,
  descriptors: readonly TensorDescriptor[],
  provisionalMetadata: Readonly<Record<string, string>>,
  options: { readonly overwrite?: boolean } = {},
): Promise<DeferredHeaderWriter> {
  const layout: SafetensorsLayout = planSafetensorsLayout(descriptors, provisionalMetadata, path);
  const sizes = new Map(descriptors.map((d) => [d.name, d.byteLength]));
  const written = new Map<string, number>();
  const file = await createAtomicFile(path, options);
  try {
    await file.handle.truncate(layout.totalSize);
  } catch (error) {
    await file.abort();
    throw await fileSystemError(error, path, { bytesNeeded: layout.totalSize });
  }
  return {
    layout,
    async write(name, bytes) {
      const offset = layout.offsets.get(name);
      if (offset === undefined || bytes.byteLength !== sizes.get(name) || written.has(name)) {
        await file.abort();
        throw new TensorIoError("SINK_BAD_WRITE", `${path}: unexpected write of ${bytes.byteLength} bytes for tensor ${JSON.stringify(name)}`, { file: path });
      }
      try {
        await writeFully(file.handle, bytes, layout.dataStart + offset);
      } catch (error) {
        await file.abort();
        throw await fileSystemError(error, path, { bytesNeeded: layout.totalSize });
      }
      written.set(name, bytes.byteLength);
    },
    async finish(metadata, verify) {
      const final = planSafetensorsLayout(descriptors, metadata, path);
      if (final.headerBytes.byteLength !== layout.headerBytes.byteLength) {
        await file.abort();
        throw new SafetensorsError("SAFETENSORS_HEADER_CHANGED", `${path}: final metadata changes the header length; output discarded`, { file: path });
      }
      if (written.size !== descriptors.length) {
        await file.abort();
        throw new TensorIoError("SINK_INCOMPLETE", `${path}: ${descriptors.length - written.size} tensors were never written; output discarded`, { file: path });
      }
      try {
        await writeFully(file.handle, final.headerBytes, 0);
      } catch (error) {
        await file.abort();
        throw await fileSystemError(error, path, { bytesNeeded: layout.totalSize });
      }
      await file.commit(verify ? { verify } : {});
    },
    abort: () => file.abort(),
  };
}
