import type { DType } from "./dtypes.js";
import type { FileIdentity } from "./open-file-for-read.js";

/** What is known of a tensor from a header alone, before any of its bytes are read. */
export interface TensorDescriptor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Length in bytes of the tensor's contiguous little-endian data. */
  readonly byteLength: number;
}

/**
 * A model file opened for reading: headers are parsed at open time, tensor bytes are read on
 * demand. The safetensors reader and safe-pickle's checkpoint reader both implement it.
 */
export interface TensorSource {
  readonly path: string;
  readonly descriptors: readonly TensorDescriptor[];
  readonly metadata: Readonly<Record<string, string>>;
  /** The descriptor of one tensor, or undefined when the source has no such name. */
  get(name: string): TensorDescriptor | undefined;
  /**
   * The tensor's contiguous little-endian bytes. When `into` is given (at least `byteLength`
   * long) the bytes are written there and a view of it is returned, so callers can reuse buffers.
   */
  read(name: string, into?: Uint8Array): Promise<Uint8Array>;
  /** A byte range of one tensor, relative to the tensor's first byte. */
  readRange(name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array>;
  /**
   * Absolute file offset of a tensor's first byte, for sources whose reads return the file's own
   * bytes (safetensors); absent where bytes are decoded or gathered (checkpoints).
   */
  fileOffsetOf?(name: string): number;
  /** The file the source reads through its handle, as opened (so a hasher opening the path again can check it is the same). */
  readonly fileIdentity?: FileIdentity;
  close(): Promise<void>;
}

/** A destination for tensors: begin with every descriptor, write each tensor once, then commit or abort. */
export interface TensorSink {
  readonly path: string;
  begin(descriptors: readonly TensorDescriptor[], metadata?: Readonly<Record<string, string>>): Promise<void>;
  /** Writes one tensor's bytes (or a chunk at `offset` within the tensor). */
  write(name: string, bytes: Uint8Array, offset?: number): Promise<void>;
  /**
   * Where in the file the byte at `offset` of tensor `name` goes, once `begin` laid it out (a
   * sink that writes a file). A caller that lays its buffers out to agree with it modulo
   * DIRECT_ALIGNMENT lets direct writes skip their copy.
   */
  fileOffsetOf?(name: string, offset: number): number | undefined;
  /** Flushes, fsyncs and renames the temp file into place. */
  commit(): Promise<void>;
  /** Removes the temp file; the target path is untouched. Safe to call more than once. */
  abort(): Promise<void>;
}
