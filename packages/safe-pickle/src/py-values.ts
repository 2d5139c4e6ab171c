import type { DType } from "@stmerge/core-tensors";

/**
 * The values the pickle VM builds. Python's data types map to plain JS values where they are
 * unambiguous (None → null, bool, str, float/int → number or bigint, list → array, bytes →
 * Uint8Array); everything else is a small class so nothing is ever executed or confused with
 * JS objects (dict keys live in a Map, so `__proto__` is just a string).
 */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PySet
  | PyGlobal
  | PyRecord
  | PyStorage
  | PyTensor
  | PyOpaque;

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PyDict {
  readonly entries = new Map<PyValue, PyValue>();
  /** Attributes set by BUILD (an OrderedDict's `_metadata`), kept as data. */
  attributes: PyValue = null;
  constructor(readonly className = "dict") {}
  get(key: PyValue): PyValue | undefined {
    return this.entries.get(key);
  }
}

export class PySet {
  constructor(
    readonly items: PyValue[],
    readonly frozen: boolean,
  ) {}
}

export type GlobalVerdict = "allowed" | "unknown" | "dangerous";

/** A reference to `module.name`; resolving it never imports or calls anything. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly verdict: GlobalVerdict,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * An instance of an allowlisted inert class (a pytorch_lightning callback, argparse.Namespace,
 * numpy scalars and arrays), kept as a plain record of what the pickle said about it.
 */
export class PyRecord {
  state: PyValue = null;
  readonly listItems: PyValue[] = [];
  readonly dictItems = new Map<PyValue, PyValue>();
  constructor(
    readonly className: string,
    readonly args: readonly PyValue[],
  ) {}
}

/** A torch storage: bytes held in a container record, referenced by persistent id. */
export class PyStorage {
  constructor(
    /** Container key (`data/<key>` in zip files, the root key in legacy files). */
    readonly key: string,
    /** Element dtype of a typed storage, or undefined for an UntypedStorage (counted in bytes). */
    readonly dtype: DType | undefined,
    /** Torch's dtype name, kept for messages about dtypes safetensors cannot hold. */
    readonly torchDType: string,
    /** Element size of the storage's type (1 for untyped storages). */
    readonly elementSize: number,
    /** Size in bytes declared by the pickle. */
    readonly byteLength: number,
    readonly location: string,
    /** Legacy views: byte offset of this view inside its root storage. */
    readonly byteOffset = 0,
  ) {}
}

/** A tensor as the pickle describes it: a strided view of a storage, counted in elements. */
export class PyTensor {
  constructor(
    readonly storage: PyStorage,
    readonly dtype: DType | undefined,
    readonly torchDType: string,
    readonly elementSize: number,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}
}

/** The stand-in for a refused call: audits keep going, loads fail with a report. */
export class PyOpaque {
  constructor(
    readonly callable: string,
    readonly offset: number,
  ) {}
}

/** Python ints: small ones as numbers, the rest as bigints. */
export function normalizeInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

export function pyTypeName(value: PyValue): string {
  if (value === null) return "None";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  if (typeof value === "bigint") return "int";
  if (typeof value === "string") return "str";
  if (value instanceof Uint8Array) return "bytes";
  if (Array.isArray(value)) return "list";
  if (value instanceof PyTuple) return "tuple";
  if (value instanceof PyDict) return value.className;
  if (value instanceof PySet) return value.frozen ? "frozenset" : "set";
  if (value instanceof PyGlobal) return `global ${value.qualifiedName}`;
  if (value instanceof PyRecord) return value.className;
  if (value instanceof PyStorage) return "storage";
  if (value instanceof PyTensor) return "tensor";
  return `refused call of ${value.callable}`;
}

/** An int argument as a safe JS integer, or undefined. */
export function asSafeInt(value: PyValue | undefined): number | undefined {
  if (typeof value === "number" && Number.isSafeInteger(value)) return value;
  if (typeof value === "bigint" && value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  return undefined;
}
