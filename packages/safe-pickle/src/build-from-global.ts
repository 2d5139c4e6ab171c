import type { GlobalRole } from "./allowlist.js";
import { classifyGlobal } from "./allowlist.js";
import { PickleError } from "./pickle-errors.js";
import { asSafeInt, PyDict, PyGlobal, PyOpaque, PyRecord, PySet, PyStorage, PyTensor, PyTuple, pyTypeName, type PyValue } from "./py-values.js";
import type { TorchDTypeInfo } from "./torch-dtypes.js";

/** Where a call happens, for error messages. */
export interface CallSite {
  readonly file: string;
  readonly record: string;
  readonly offset: number;
  readonly opcode: string;
}

function fail(site: CallSite, callee: string, problem: string): never {
  throw new PickleError("PICKLE_BAD_ARGUMENT", `${site.file}: ${site.record} byte ${site.offset}: ${callee} ${problem}`, { file: site.file });
}

function roleOf(g: PyGlobal): GlobalRole | undefined {
  return classifyGlobal(g.module, g.name).entry?.role;
}

function intList(value: PyValue | undefined, site: CallSite, callee: string, what: string): number[] {
  const items = value instanceof PyTuple ? value.items : Array.isArray(value) ? value : undefined;
  if (!items) fail(site, callee, `expects ${what} as a tuple of ints, got ${value === undefined ? "nothing" : pyTypeName(value)}`);
  return items.map((item) => {
    const n = asSafeInt(item);
    if (n === undefined || n < 0) fail(site, callee, `${what} holds ${item === null ? "None" : String(item)}, not a non-negative int`);
    return n;
  });
}

/** Most dims a tensor may have (torch's own kernels stop at 25; model weights have at most 5). */
const MAX_TENSOR_DIMS = 64;

/**
 * Checks a strided view against its storage before anything is allocated, so a huge shape over
 * a tiny storage is refused instead of read.
 */
function checkedTensor(storage: PyStorage, info: TorchDTypeInfo, offset: number, shape: number[], stride: number[], site: CallSite): PyTensor {
  if (shape.length !== stride.length) fail(site, "tensor", `has ${shape.length} sizes but ${stride.length} strides`);
  if (shape.length > MAX_TENSOR_DIMS) {
    throw new PickleError("PICKLE_LIMIT", `${site.file}: ${site.record} byte ${site.offset}: tensor has ${shape.length} dims, over the limit of ${MAX_TENSOR_DIMS} (resource limit)`, { file: site.file });
  }
  let count = 1;
  let lastIndex = offset;
  for (let i = 0; i < shape.length; i++) {
    const dim = shape[i]!;
    count *= dim;
    if (dim > 0) lastIndex += (dim - 1) * stride[i]!;
    if (!Number.isSafeInteger(count) || !Number.isSafeInteger(lastIndex)) fail(site, "tensor", `shape ${JSON.stringify(shape)} is too large`);
  }
  const needed = count === 0 ? offset * info.elementSize : (lastIndex + 1) * info.elementSize;
  if (!Number.isSafeInteger(needed) || needed > storage.byteLength) {
    throw new PickleError(
      "PICKLE_TENSOR_OUT_OF_BOUNDS",
      `${site.file}: tensor of shape ${JSON.stringify(shape)} (stride ${JSON.stringify(stride)}, offset ${offset}) needs ${needed} bytes of storage ${JSON.stringify(storage.key)}, which holds ${storage.byteLength}`,
      { file: site.file },
    );
  }
  return new PyTensor(storage, info.dtype, info.torchName, info.elementSize, offset, shape, stride);
}

function storageInfo(storage: PyStorage): TorchDTypeInfo {
  return { torchName: storage.torchDType, dtype: storage.dtype, elementSize: storage.elementSize };
}

function rebuildTensor(version: 1 | 2 | 3, args: readonly PyValue[], site: CallSite, callee: string): PyValue {
  const storage = args[0];
  if (storage instanceof PyOpaque) return storage;
  if (!(storage instanceof PyStorage)) fail(site, callee, `expects a storage first, got ${storage === undefined ? "nothing" : pyTypeName(storage)}`);
  const minArgs = version === 1 ? 4 : version === 2 ? 6 : 7;
  if (args.length < minArgs) fail(site, callee, `takes at least ${minArgs} arguments, got ${args.length}`);
  const offset = asSafeInt(args[1]);
  if (offset === undefined || offset < 0) fail(site, callee, "storage offset is not a non-negative int");
  const shape = intList(args[2], site, callee, "size");
  const stride = intList(args[3], site, callee, "stride");
  let info = storageInfo(storage);
  if (version === 3) {
    const dtype = args[6];
    const role = dtype instanceof PyGlobal ? roleOf(dtype) : undefined;
    if (!(dtype instanceof PyGlobal) || role?.kind !== "dtype") fail(site, callee, "expects a torch dtype as its 7th argument");
    info = role.info;
  }
  return checkedTensor(storage, info, offset, shape, stride, site);
}

/** Builds the data an allowlisted global stands for; never calls anything. */
export function buildFromGlobal(callee: PyValue, args: readonly PyValue[], site: CallSite): PyValue {
  if (callee instanceof PyOpaque) return callee;
  if (!(callee instanceof PyGlobal)) {
    throw new PickleError("PICKLE_BAD_CALL", `${site.file}: ${site.record} byte ${site.offset}: ${site.opcode} calls a ${pyTypeName(callee)}, which is not callable`, { file: site.file });
  }
  if (callee.verdict !== "allowed") return new PyOpaque(callee.qualifiedName, site.offset);
  const role = roleOf(callee);
  const name = callee.qualifiedName;
  switch (role?.kind) {
    case "rebuild-tensor":
      return rebuildTensor(role.version, args, site, name);
    case "rebuild-parameter": {
      const data = args[0];
      if (!(data instanceof PyTensor) && !(data instanceof PyOpaque)) fail(site, name, `expects a tensor, got ${data === undefined ? "nothing" : pyTypeName(data)}`);
      return data;
    }
    case "rebuild-from-type": {
      const [func, newType, inner] = args;
      const funcRole = func instanceof PyGlobal ? roleOf(func) : undefined;
      if (funcRole?.kind !== "rebuild-tensor" && funcRole?.kind !== "rebuild-parameter") fail(site, name, "accepts only torch rebuild functions");
      const typeRole = newType instanceof PyGlobal ? roleOf(newType) : undefined;
      if (typeRole?.kind !== "type-marker") fail(site, name, "accepts only torch.Tensor or torch.nn.Parameter as its type");
      if (!(inner instanceof PyTuple)) fail(site, name, "expects a tuple of arguments");
      return buildFromGlobal(func!, inner.items, site);
    }
    case "ordered-dict": {
      const dict = new PyDict("OrderedDict");
      const pairs = args[0];
      if (pairs !== undefined) {
        const items = Array.isArray(pairs) ? pairs : pairs instanceof PyTuple ? pairs.items : fail(site, name, "expects a list of pairs");
        for (const pair of items) {
          if (!(pair instanceof PyTuple) || pair.items.length !== 2) fail(site, name, "expects (key, value) pairs");
          dict.entries.set(pair.items[0]!, pair.items[1]!);
        }
      }
      return dict;
    }
    case "torch-size":
      return new PyTuple(intList(args[0] ?? new PyTuple([]), site, name, "size"));
    case "torch-device": {
      const [type, index] = args;
      if (typeof type !== "string") fail(site, name, "expects a device name");
      const i = asSafeInt(index);
      return i === undefined ? type : `${type}:${i}`;
    }
    case "codecs-encode": {
      const [text, encoding] = args;
      if (typeof text !== "string") fail(site, name, "expects a str");
      const enc = typeof encoding === "string" ? encoding.toLowerCase().replace(/_/g, "-") : "utf-8";
      if (enc === "latin1" || enc === "latin-1" || enc === "iso-8859-1") {
        const out = new Uint8Array(text.length);
        for (let i = 0; i < text.length; i++) {
          const c = text.charCodeAt(i);
          if (c > 255) fail(site, name, "got a character outside latin-1");
          out[i] = c;
        }
        return out;
      }
      if (enc === "utf-8" || enc === "utf8") return new TextEncoder().encode(text);
      return fail(site, name, `refuses codec ${JSON.stringify(encoding)}; only latin-1 and utf-8 are data codecs`);
    }
    case "set": {
      const items = args[0];
      const list = items === undefined ? [] : Array.isArray(items) ? items : items instanceof PyTuple ? items.items : fail(site, name, "expects a list");
      return new PySet([...list], role.frozen);
    }
    case "bytearray": {
      const data = args[0];
      if (data === undefined) return new Uint8Array(0);
      if (data instanceof Uint8Array) return data.slice();
      return fail(site, name, "expects bytes");
    }
    case "inert-class":
      return new PyRecord(name, args);
    case "reconstructor": {
      const [cls, base] = args;
      if (cls instanceof PyOpaque) return cls;
      if (cls instanceof PyGlobal && cls.verdict !== "allowed") return new PyOpaque(cls.qualifiedName, site.offset);
      if (!(cls instanceof PyGlobal) || roleOf(cls)?.kind !== "inert-class") fail(site, name, "accepts only allowlisted inert classes");
      if (!(base instanceof PyGlobal) || roleOf(base)?.kind !== "type-marker") fail(site, name, "accepts only builtins.object as the base");
      return new PyRecord(cls.qualifiedName, []);
    }
    case "numpy-scalar":
      return new PyRecord("numpy.scalar", args);
    case "numpy-dtype":
      if (typeof args[0] !== "string") fail(site, name, "expects a dtype string");
      return new PyRecord("numpy.dtype", args);
    case "numpy-reconstruct":
      return new PyRecord("numpy.ndarray", args);
    default:
      throw new PickleError("PICKLE_BAD_CALL", `${site.file}: ${site.record} byte ${site.offset}: ${site.opcode} calls ${name}, which is data, not a constructor`, { file: site.file });
  }
}

/** NEWOBJ / OBJ / NEWOBJ_EX: instantiate a class. Only inert classes and dict-like types are accepted. */
export function instantiateClass(cls: PyValue, args: readonly PyValue[], site: CallSite): PyValue {
  if (cls instanceof PyOpaque) return cls;
  if (!(cls instanceof PyGlobal)) {
    throw new PickleError("PICKLE_BAD_CALL", `${site.file}: ${site.record} byte ${site.offset}: ${site.opcode} instantiates a ${pyTypeName(cls)}, which is not a class`, { file: site.file });
  }
  if (cls.verdict !== "allowed") return new PyOpaque(cls.qualifiedName, site.offset);
  const role = roleOf(cls);
  if (role?.kind === "inert-class") return new PyRecord(cls.qualifiedName, args);
  if (role?.kind === "ordered-dict") return new PyDict("OrderedDict");
  if (role?.kind === "set") return new PySet([], role.frozen);
  throw new PickleError("PICKLE_BAD_CALL", `${site.file}: ${site.record} byte ${site.offset}: ${site.opcode} instantiates ${cls.qualifiedName}, which is not an inert data class`, { file: site.file });
}
