import { fileIdentityOf, openFileForRead, TensorIoError, type TensorDescriptor, type TensorSource } from "@stmerge/core-tensors";
import { findTensors, type FoundTensor } from "./find-tensors.js";
import { loadCheckpointStructure, type CheckpointFormat, type LoadOptions } from "./load-checkpoint-structure.js";
import { CheckpointFormatError, ForbiddenGlobalError } from "./pickle-errors.js";
import type { GlobalUse } from "./pickle-vm.js";
import type { PyTensor, PyValue } from "./py-values.js";
import { extractTensorFromStorage, isContiguous, readStridedTensor, tensorElementCount, type StorageLocation } from "./read-strided-tensor.js";

/** A tensor under the name a caller chose (a state-dict key, usually). */
export interface NamedTensor {
  readonly name: string;
  readonly tensor: PyTensor;
}

/** A torch checkpoint opened safely: its structure, every tensor in it, and lazy readers of their bytes. */
export interface TorchCheckpoint {
  readonly path: string;
  readonly format: CheckpointFormat;
  readonly fileSize: number;
  /** The unpickled object (a dict, usually), as inert data. */
  readonly root: PyValue;
  /** Every tensor reachable from the root, with its path of keys. */
  readonly tensors: readonly FoundTensor[];
  /** Every global the pickles reference (all allowed, or the open would have failed). */
  readonly globals: readonly GlobalUse[];
  /** Contiguous little-endian bytes of a tensor; strided views and shared storages are materialized exactly. */
  readTensor(tensor: PyTensor, into?: Uint8Array): Promise<Uint8Array>;
  /** Where a tensor's (root) storage lies in the file; a reader can fetch it whole and call `extractTensor`. */
  storageLocationOf(tensor: PyTensor): StorageLocation;
  /** A tensor's contiguous bytes from its whole storage in memory (as read from `storageLocationOf`). */
  extractTensor(tensor: PyTensor, storageBytes: Uint8Array, into?: Uint8Array): Uint8Array;
  /**
   * The CRC-32 the zip recorded for exactly the bytes `readTensor` returns: when the tensor is its
   * whole storage, contiguous and not byte-swapped; undefined otherwise (and for non-zip files).
   * A digest of the source independent of this reader's reads (the converter checks against it).
   */
  recordedCrc32Of(tensor: PyTensor): number | undefined;
  /** A `TensorSource` over chosen tensors under chosen names (the converter passes the state dict). */
  createSource(tensors: readonly NamedTensor[], metadata?: Readonly<Record<string, string>>): TensorSource;
  /** A `TensorSource` over every tensor, named by its path joined with ".". */
  allTensorsSource(): TensorSource;
  close(): Promise<void>;
}

/** Options of `openTorchCheckpoint`: the load options plus what the sources it creates may write. */
export interface OpenCheckpointOptions extends LoadOptions {
  /**
   * Lets a source's tensors add up to more than `MAX_OUTPUT_RATIO` times the file (many tensors
   * viewing one storage, expanded views). Off by default, so a small file cannot make a
   * conversion write gigabytes; a CLI can offer it as a flag for files the user trusts.
   */
  readonly allowAmplification?: boolean;
}

/** Most bytes a source may materialize, as a multiple of the file's size (and at least `MIN_OUTPUT_ALLOWANCE`). */
export const MAX_OUTPUT_RATIO = 4;
/** Small files may always produce this much, so tied weights in tiny models never trip the ratio. */
export const MIN_OUTPUT_ALLOWANCE = 64 << 20;

/** A tensor name Python could hold but UTF-8 (safetensors, JSON, terminals) cannot: an unpaired surrogate. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A path of keys as one name: `state_dict.model.diffusion_model.out.0.weight`. */
export function joinTensorPath(path: readonly (string | number)[]): string {
  return path.map(String).join(".");
}

/**
 * Opens a .ckpt/.pt/.pth/.bin file with the non-executing pickle VM. Refuses the file with a
 * `ForbiddenGlobalError` listing every global outside the allowlist. No tensor bytes are read
 * here; storages are only located and their extents checked.
 */
export async function openTorchCheckpoint(path: string, options: OpenCheckpointOptions = {}): Promise<TorchCheckpoint> {
  const { handle, stats: info } = await openFileForRead(path);
  try {
    const structure = await loadCheckpointStructure(handle, info.size, path, options);
    if (structure.violations.length > 0) throw new ForbiddenGlobalError(path, structure.violations);
    const tensors = findTensors(structure.root);
    for (const { path: keys, tensor } of tensors) {
      // Zero strides (expanded views) are the only way a tensor can be larger than its storage;
      // refuse ones that would materialize more than the whole file, so a tiny file cannot demand gigabytes.
      const bytes = tensorElementCount(tensor) * tensor.elementSize;
      if (bytes > info.size + 65_536) {
        throw new CheckpointFormatError("PICKLE_TENSOR_EXPANDED", `${path}: tensor ${JSON.stringify(joinTensorPath(keys))} would materialize ${bytes} bytes from a ${info.size}-byte file (expanded view)`, { file: path });
      }
    }
    // torch byte-swaps a big-endian storage by the storage's element type: typed storages by their
    // dtype, untyped ones (bytes, used by _rebuild_tensor_v3) not at all.
    const swaps = (tensor: PyTensor): boolean => structure.bigEndian && tensor.storage.elementSize > 1;
    if (structure.bigEndian) {
      for (const { path: keys, tensor } of tensors) {
        if (tensor.storage.elementSize > 1 && tensor.storage.elementSize !== tensor.elementSize) {
          throw new CheckpointFormatError("BYTEORDER_UNSUPPORTED", `${path}: tensor ${JSON.stringify(joinTensorPath(keys))} views a big-endian ${tensor.storage.torchDType} storage as ${tensor.torchDType}; refused (the byte swap would not match torch's)`, { file: path });
        }
      }
    }
    let closed = false;

    const readTensor = async (tensor: PyTensor, into?: Uint8Array): Promise<Uint8Array> => {
      if (closed) throw new TensorIoError("SOURCE_CLOSED", `${path}: read after close`, { file: path });
      const location = structure.storages.get(tensor.storage.key);
      if (!location) throw new CheckpointFormatError("PICKLE_MISSING_STORAGE", `${path}: storage ${JSON.stringify(tensor.storage.key)} was never located`, { file: path });
      return readStridedTensor(handle, location, tensor, path, { into, bigEndian: swaps(tensor) });
    };

    const storageLocationOf = (tensor: PyTensor): StorageLocation => {
      const location = structure.storages.get(tensor.storage.key);
      if (!location) throw new CheckpointFormatError("PICKLE_MISSING_STORAGE", `${path}: storage ${JSON.stringify(tensor.storage.key)} was never located`, { file: path });
      return location;
    };

    const createSource = (named: readonly NamedTensor[], metadata: Readonly<Record<string, string>> = {}): TensorSource => {
      const byName = new Map<string, NamedTensor & { descriptor: TensorDescriptor }>();
      for (const t of named) {
        const { dtype, torchDType, elementSize } = t.tensor;
        if (dtype === undefined) {
          throw new CheckpointFormatError("TENSOR_DTYPE_UNSUPPORTED", `${path}: tensor ${JSON.stringify(t.name)} has dtype ${torchDType}, which safetensors cannot hold`, { file: path });
        }
        if (byName.has(t.name)) throw new CheckpointFormatError("TENSOR_NAME_DUPLICATE", `${path}: two tensors are named ${JSON.stringify(t.name)}`, { file: path });
        if (LONE_SURROGATE.test(t.name)) {
          throw new CheckpointFormatError("TENSOR_NAME_INVALID", `${path}: tensor name ${JSON.stringify(t.name)} holds a lone surrogate, which UTF-8 cannot encode (refused)`, { file: path });
        }
        const descriptor: TensorDescriptor = { name: t.name, dtype, shape: t.tensor.shape, byteLength: tensorElementCount(t.tensor) * elementSize };
        byName.set(t.name, { ...t, descriptor });
      }
      const total = [...byName.values()].reduce((sum, t) => sum + t.descriptor.byteLength, 0);
      const allowed = Math.max(MAX_OUTPUT_RATIO * info.size, MIN_OUTPUT_ALLOWANCE);
      if (total > allowed && !options.allowAmplification) {
        throw new CheckpointFormatError(
          "CHECKPOINT_AMPLIFICATION",
          `${path}: refused, its tensors add up to ${total} bytes from a ${info.size}-byte file (${(total / info.size).toFixed(1)}x, over the ${MAX_OUTPUT_RATIO}x limit): tensors share storages or expand views; allow amplification only for a file you trust`,
          { file: path },
        );
      }
      const entry = (name: string) => {
        const t = byName.get(name);
        if (!t) throw new CheckpointFormatError("TENSOR_NOT_FOUND", `${path}: no tensor named ${JSON.stringify(name)}`, { file: path });
        return t;
      };
      return {
        path,
        fileIdentity: fileIdentityOf(info),
        descriptors: [...byName.values()].map((t) => t.descriptor),
        metadata,
        get: (name) => byName.get(name)?.descriptor,
        read: (name, into) => readTensor(entry(name).tensor, into),
        async readRange(name, start, end, into) {
          const t = entry(name);
          const length = t.descriptor.byteLength;
          if (!(start >= 0 && end >= start && end <= length)) {
            throw new TensorIoError("RANGE_OUT_OF_BOUNDS", `${path}: range ${start}..${end} is outside tensor ${JSON.stringify(name)} (${length} bytes)`, { file: path });
          }
          if (isContiguous(t.tensor) && !swaps(t.tensor)) {
            // A contiguous tensor's range is a plain slice of its storage: read just that.
            const location = structure.storages.get(t.tensor.storage.key)!;
            const shifted = { ...location, fileOffset: location.fileOffset + start };
            const view = { ...t.tensor, shape: [end - start], stride: [1], elementSize: 1, storageOffset: t.tensor.storageOffset * t.tensor.elementSize } as PyTensor;
            return readStridedTensor(handle, shifted, view, path, { into });
          }
          const all = await readTensor(t.tensor);
          const part = all.subarray(start, end);
          if (!into) return part;
          into.set(part);
          return into.subarray(0, end - start);
        },
        close: () => close(),
      };
    };

    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await handle.close();
    };

    return {
      path,
      format: structure.format,
      fileSize: info.size,
      root: structure.root,
      tensors,
      globals: structure.globals,
      readTensor,
      storageLocationOf,
      extractTensor: (tensor, storageBytes, into) => {
        const location = storageLocationOf(tensor);
        if (storageBytes.byteLength !== location.byteLength) {
          throw new TensorIoError("BUFFER_TOO_SMALL", `${path}: storage ${JSON.stringify(tensor.storage.key)} is ${location.byteLength} bytes, got ${storageBytes.byteLength}`, { file: path });
        }
        return extractTensorFromStorage(storageBytes, tensor, { ...(into ? { into } : {}), bigEndian: swaps(tensor) });
      },
      recordedCrc32Of: (tensor) => {
        const location = structure.storages.get(tensor.storage.key);
        if (location?.crc32 === undefined || swaps(tensor) || tensor.storageOffset !== 0 || tensor.storage.byteOffset !== 0 || !isContiguous(tensor)) return undefined;
        return tensorElementCount(tensor) * tensor.elementSize === location.byteLength ? location.crc32 : undefined;
      },
      createSource,
      allTensorsSource: () => createSource(tensors.map((t) => ({ name: joinTensorPath(t.path), tensor: t.tensor }))),
      close,
    };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}
