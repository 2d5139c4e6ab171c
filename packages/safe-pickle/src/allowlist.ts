import { TORCH_DTYPE_GLOBALS, TORCH_STORAGE_CLASSES, type TorchDTypeInfo } from "./torch-dtypes.js";
import type { GlobalVerdict } from "./py-values.js";

/** What an allowlisted global is used for; the VM builds data for each role and calls nothing. */
export type GlobalRole =
  | { readonly kind: "rebuild-tensor"; readonly version: 1 | 2 | 3 }
  | { readonly kind: "rebuild-parameter"; readonly withState: boolean }
  | { readonly kind: "rebuild-from-type" }
  | { readonly kind: "storage-class"; readonly info: TorchDTypeInfo }
  | { readonly kind: "untyped-storage" }
  | { readonly kind: "dtype"; readonly info: TorchDTypeInfo }
  | { readonly kind: "ordered-dict" }
  | { readonly kind: "torch-size" }
  | { readonly kind: "torch-device" }
  | { readonly kind: "codecs-encode" }
  | { readonly kind: "set"; readonly frozen: boolean }
  | { readonly kind: "bytearray" }
  | { readonly kind: "inert-class" }
  | { readonly kind: "reconstructor" }
  | { readonly kind: "numpy-scalar" }
  | { readonly kind: "numpy-dtype" }
  | { readonly kind: "numpy-reconstruct" }
  | { readonly kind: "type-marker" };

export interface AllowlistEntry {
  readonly module: string;
  readonly name: string;
  readonly role: GlobalRole;
  /** Why it is safe to accept, for the README and `audit --json`. */
  readonly why: string;
}

const entries: AllowlistEntry[] = [];
const add = (module: string, name: string, role: GlobalRole, why: string): void => {
  entries.push({ module, name, role, why });
};

add("torch._utils", "_rebuild_tensor", { kind: "rebuild-tensor", version: 1 }, "tensor = strided view of a storage (pre-1.0 layout); built as a descriptor");
add("torch._utils", "_rebuild_tensor_v2", { kind: "rebuild-tensor", version: 2 }, "how torch.save writes every tensor; built as a descriptor");
add("torch._utils", "_rebuild_tensor_v3", { kind: "rebuild-tensor", version: 3 }, "tensors of newer dtypes over an untyped storage; built as a descriptor");
add("torch._utils", "_rebuild_parameter", { kind: "rebuild-parameter", withState: false }, "nn.Parameter wrapper; the tensor is kept, the wrapper dropped");
add("torch._utils", "_rebuild_parameter_with_state", { kind: "rebuild-parameter", withState: true }, "nn.Parameter with attributes; the tensor is kept");
add("torch._tensor", "_rebuild_from_type_v2", { kind: "rebuild-from-type" }, "tensor subclass wrapper; accepted only around an allowlisted rebuild function");
for (const [name, info] of TORCH_STORAGE_CLASSES) add("torch", name, { kind: "storage-class", info }, `typed storage class naming the ${info.torchName} element type`);
add("torch.storage", "UntypedStorage", { kind: "untyped-storage" }, "byte storage class; the dtype comes from _rebuild_tensor_v3");
add("torch", "UntypedStorage", { kind: "untyped-storage" }, "alias of torch.storage.UntypedStorage");
add("torch.storage", "_LegacyStorage", { kind: "untyped-storage" }, "byte storage class in some 2.x files");
for (const [name, info] of TORCH_DTYPE_GLOBALS) add("torch", name, { kind: "dtype", info }, "dtype constant");
add("torch", "Size", { kind: "torch-size" }, "a tuple of ints");
add("torch", "device", { kind: "torch-device" }, "device name, kept as a string record");
add("torch", "Tensor", { kind: "type-marker" }, "type named by _rebuild_from_type_v2");
add("torch.nn.parameter", "Parameter", { kind: "type-marker" }, "type named by _rebuild_from_type_v2");
add("collections", "OrderedDict", { kind: "ordered-dict" }, "state dicts are OrderedDicts; built as a dict");
add("_codecs", "encode", { kind: "codecs-encode" }, "protocol 2 encodes bytes as _codecs.encode(str, 'latin1'); only text codecs accepted");
add("builtins", "set", { kind: "set", frozen: false }, "set of plain values");
add("builtins", "frozenset", { kind: "set", frozen: true }, "frozenset of plain values");
add("builtins", "bytearray", { kind: "bytearray" }, "bytes");
add("builtins", "object", { kind: "type-marker" }, "base class argument of copyreg._reconstructor");
add("__builtin__", "set", { kind: "set", frozen: false }, "Python 2 name of builtins.set");
add("__builtin__", "object", { kind: "type-marker" }, "Python 2 name of builtins.object");
add("copyreg", "_reconstructor", { kind: "reconstructor" }, "protocol 0/1 instance creation; accepted only for allowlisted inert classes");
add("copy_reg", "_reconstructor", { kind: "reconstructor" }, "Python 2 name of copyreg._reconstructor");
for (const mod of ["numpy.core.multiarray", "numpy._core.multiarray"]) {
  add(mod, "scalar", { kind: "numpy-scalar" }, "numpy scalar = dtype + raw bytes; kept as data");
  add(mod, "_reconstruct", { kind: "numpy-reconstruct" }, "numpy array = dtype + shape + raw bytes; kept as data");
}
add("numpy", "dtype", { kind: "numpy-dtype" }, "numpy dtype descriptor; kept as data");
add("numpy", "ndarray", { kind: "type-marker" }, "type argument of numpy _reconstruct");
const inert = [
  ["pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"],
  ["pytorch_lightning.callbacks.early_stopping", "EarlyStopping"],
  ["pytorch_lightning.callbacks.lr_monitor", "LearningRateMonitor"],
  ["pytorch_lightning.utilities.parsing", "AttributeDict"],
  ["lightning.pytorch.callbacks.model_checkpoint", "ModelCheckpoint"],
  ["lightning.pytorch.callbacks.early_stopping", "EarlyStopping"],
  ["lightning_fabric.utilities.data", "AttributeDict"],
  ["argparse", "Namespace"],
  ["torch.torch_version", "TorchVersion"],
  ["torch.nn.modules.container", "ParameterDict"],
] as const;
for (const [module, name] of inert) add(module, name, { kind: "inert-class" }, "training bookkeeping found in real checkpoints; kept as a plain record, never instantiated");

export const ALLOWLIST: readonly AllowlistEntry[] = entries;

const byName = new Map<string, AllowlistEntry>(entries.map((e) => [`${e.module}\u0000${e.name}`, e]));

/** Modules where every name can run code or touch the system. */
const DANGEROUS_MODULES = new Set([
  "os", "posix", "nt", "subprocess", "sys", "runpy", "importlib", "webbrowser", "socket", "shutil", "pty", "ctypes", "code", "codeop",
  "commands", "popen2", "platform", "pickle", "_pickle", "cPickle", "marshal", "dill", "cloudpickle", "joblib", "multiprocessing", "threading",
  "asyncio", "http", "httplib", "urllib", "urllib2", "requests", "ftplib", "smtplib", "telnetlib", "pdb", "bdb", "timeit", "profile", "cProfile",
  "trace", "tempfile", "glob", "signal", "ssl", "types", "zipimport", "imp", "pydoc", "venv", "ensurepip", "distutils", "setuptools", "pip",
  "torch.hub", "torch.jit", "torch.package", "torch.serialization", "torch._dynamo", "torch._inductor", "numpy.testing._private.utils", "operator",
  "functools", "gc", "inspect", "builtins.__dict__", "_posixsubprocess", "_io", "io", "fcntl", "resource", "mmap", "sqlite3", "tarfile", "zipfile",
]);

/** Names in otherwise mixed modules that evaluate code, import, or reach attributes. */
const DANGEROUS_NAMES = new Set([
  "builtins.eval", "builtins.exec", "builtins.compile", "builtins.getattr", "builtins.setattr", "builtins.delattr", "builtins.__import__",
  "builtins.open", "builtins.globals", "builtins.locals", "builtins.vars", "builtins.breakpoint", "builtins.input", "builtins.apply",
  "builtins.execfile", "builtins.memoryview", "builtins.type", "builtins.super", "builtins.help", "builtins.exit", "builtins.quit",
  "__builtin__.eval", "__builtin__.exec", "__builtin__.execfile", "__builtin__.getattr", "__builtin__.__import__", "__builtin__.open",
  "__builtin__.compile", "__builtin__.apply", "__builtin__.file", "torch.load", "torch.save", "numpy.load", "numpy.fromfile",
  "torch._C._jit_compile", "torch.storage._load_from_bytes",
]);

function moduleIsDangerous(module: string): boolean {
  if (DANGEROUS_MODULES.has(module)) return true;
  const dot = module.indexOf(".");
  return dot > 0 && DANGEROUS_MODULES.has(module.slice(0, dot));
}

export interface GlobalClassification {
  readonly verdict: GlobalVerdict;
  readonly entry: AllowlistEntry | undefined;
}

/** Resolves `module.name` against the allowlist (allowed), the known-dangerous list, or neither (unknown). */
export function classifyGlobal(module: string, name: string): GlobalClassification {
  const entry = byName.get(`${module}\u0000${name}`);
  if (entry) return { verdict: "allowed", entry };
  if (moduleIsDangerous(module) || DANGEROUS_NAMES.has(`${module}.${name}`)) return { verdict: "dangerous", entry: undefined };
  return { verdict: "unknown", entry: undefined };
}
