import { classifyGlobal } from "./allowlist.js";
import type { CallSite } from "./build-from-global.js";
import { PickleError } from "./pickle-errors.js";
import { asSafeInt, PyGlobal, PyOpaque, PyTuple, pyTypeName, type PyValue } from "./py-values.js";
import type { TorchDTypeInfo } from "./torch-dtypes.js";

/** A decoded persistent id `('storage', storage_type, key, location, numel[, view_metadata])`. */
export interface StoragePid {
  readonly info: TorchDTypeInfo;
  readonly untyped: boolean;
  readonly key: string;
  readonly location: string;
  /** Elements of `info` (bytes for untyped storages). */
  readonly numel: number;
  readonly view: { readonly key: string; readonly offset: number; readonly size: number } | undefined;
}

const UNTYPED: TorchDTypeInfo = { torchName: "uint8", dtype: "U8", elementSize: 1 };

/** Decodes a storage persistent id; returns the placeholder when its storage type was refused. */
export function parseStoragePid(pid: PyValue, site: CallSite): StoragePid | PyOpaque {
  const bad = (problem: string): never => {
    throw new PickleError("PICKLE_BAD_PERSISTENT_ID", `${site.file}: ${site.record} byte ${site.offset}: persistent id ${problem}`, { file: site.file });
  };
  if (!(pid instanceof PyTuple)) return bad(`is a ${pyTypeName(pid)}, not a storage tuple`);
  const [tag, type, key, location, numel, view] = pid.items;
  if (tag !== "storage") return bad(`has tag ${typeof tag === "string" ? JSON.stringify(tag) : pyTypeName(tag ?? null)}, not 'storage'`);
  if (type instanceof PyOpaque) return type;
  if (!(type instanceof PyGlobal)) return bad("names no storage type");
  if (type.verdict !== "allowed") return new PyOpaque(type.qualifiedName, site.offset);
  const role = classifyGlobal(type.module, type.name).entry?.role;
  let info: TorchDTypeInfo;
  let untyped = false;
  if (role?.kind === "storage-class") info = role.info;
  else if (role?.kind === "untyped-storage") {
    info = UNTYPED;
    untyped = true;
  } else if (role?.kind === "dtype") {
    // torch ≥ 2.0 may name the dtype instead of a storage class for typed storages.
    info = role.info;
  } else return bad(`names ${type.qualifiedName}, which is not a storage type`);
  if (typeof key !== "string" && typeof key !== "number") return bad("has no storage key");
  if (typeof location !== "string") return bad("has no location");
  const n = asSafeInt(numel);
  if (n === undefined || n < 0) return bad("has no valid element count");
  let viewInfo: StoragePid["view"];
  if (view instanceof PyTuple) {
    const [viewKey, offset, size] = view.items;
    const o = asSafeInt(offset);
    const s = asSafeInt(size);
    if (typeof viewKey !== "string" || o === undefined || s === undefined || o < 0 || s < 0) return bad("has a malformed view");
    viewInfo = { key: viewKey, offset: o, size: s };
  }
  return { info, untyped, key: String(key), location, numel: n, view: viewInfo };
}
