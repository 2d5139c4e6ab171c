import util from "node:util";
import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import { KernelError } from "./errors.js";
import type { DeviceChoice, KernelBackend } from "./kernel-backend.js";
import { createTfjsKernelBackend, type TfNamespace } from "./tfjs-kernel-backend.js";

export interface KernelBackendOptions {
  /** auto: the GPU only where it loads, else CPU; cpu: never try the GPU; gpu: GPU or an error. Default auto. */
  device?: DeviceChoice;
  /** Worker threads for the CPU kernels (also used for decode/encode under tfjs). */
  workers?: number;
  /** Loads the GPU TensorFlow.js namespace; defaults to `loadTfjsNodeGpu`. Tests inject a stand-in. */
  loadGpu?: () => Promise<TfNamespace>;
}

export interface KernelBackendSelection {
  readonly backend: KernelBackend;
  readonly device: "cpu" | "gpu";
  /** One line saying which backend runs and why, for the banner (the library never prints it). */
  readonly reason: string;
}

// A variable, not a literal, so bundlers leave the optional native package out of the bundle.
const TFJS_NODE_GPU = "@tensorflow/tfjs-node-gpu";

/**
 * Imports `@tensorflow/tfjs-node-gpu` lazily. It fails where the package, its native binding or
 * its CUDA libraries are missing (the usual case: pnpm does not run its download script).
 */
export async function loadTfjsNodeGpu(): Promise<TfNamespace> {
  // libtensorflow logs to stderr unless told otherwise; a library must stay quiet.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "2";
  // tfjs-node 4.22 calls util.isNullOrUndefined, removed in Node 23 (tensorflow/tfjs#8609).
  const legacy = util as unknown as Record<string, unknown>;
  if (typeof legacy.isNullOrUndefined !== "function") legacy.isNullOrUndefined = (v: unknown) => v === null || v === undefined;
  const mod = (await import(TFJS_NODE_GPU)) as { default?: TfNamespace } & TfNamespace;
  const tf = mod.default ?? mod;
  const backend = tf.getBackend();
  if (backend !== "tensorflow") throw new Error(`tfjs-node-gpu loaded but its backend is ${JSON.stringify(backend)}, not "tensorflow"`);
  return tf;
}

export interface GpuLoadProblem {
  /** A few words for the banner: "not installed", "native binding missing", "CUDA library libcudart.so.11.0 missing". */
  readonly short: string;
  /** What to do about it, one clause. */
  readonly fix: string;
}

/**
 * Says in a few words why the GPU package did not load (native load errors quote long paths and
 * several lines; the user needs what is missing and how to get it). The full error stays the
 * `cause` of the typed error, for --debug.
 */
export function describeGpuLoadProblem(error: unknown): GpuLoadProblem {
  const text = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | undefined)?.code;
  if (/tfjs_binding\.node/.test(text)) {
    return { short: "tfjs-node-gpu native binding missing", fix: "its install script did not run: in the repository run `pnpm approve-builds` (allow @tensorflow/tfjs-node-gpu) then `pnpm rebuild @tensorflow/tfjs-node-gpu`" };
  }
  if ((code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && text.includes(TFJS_NODE_GPU)) {
    return { short: "tfjs-node-gpu not installed", fix: "install @tensorflow/tfjs-node-gpu@4.22.0 beside stmerge (Linux x64, NVIDIA driver, CUDA 11.2 and cuDNN 8.1)" };
  }
  const lib = /\b(lib(?:cud\w*|cublas\w*|cufft\w*|curand\w*|cusolver\w*|cusparse\w*|nvinfer\w*|tensorflow\w*)\.so[\d.]*)/i.exec(text)?.[1];
  if (lib) return { short: `CUDA library ${lib} missing`, fix: "install CUDA 11.2 and cuDNN 8.1 where the loader finds them (LD_LIBRARY_PATH)" };
  return { short: "tfjs-node-gpu did not load", fix: "run with --debug for the loader's error" };
}

/** Chooses and creates the kernel backend for `--device auto|cpu|gpu`, saying why. */
export async function selectKernelBackend(options: KernelBackendOptions = {}): Promise<KernelBackendSelection> {
  const device = options.device ?? "auto";
  if (device !== "auto" && device !== "cpu" && device !== "gpu") {
    throw new KernelError("DEVICE_UNKNOWN", `unknown device ${JSON.stringify(device)} (expected auto, cpu or gpu)`);
  }
  const cpuOptions = options.workers === undefined ? {} : { workers: options.workers };
  if (device === "cpu") {
    const backend = createCpuKernelBackend(cpuOptions);
    return { backend, device: "cpu", reason: `${backend.description}: CPU requested` };
  }
  let tf: TfNamespace;
  try {
    tf = await (options.loadGpu ?? loadTfjsNodeGpu)();
  } catch (error) {
    if (device === "gpu") {
      const problem = describeGpuLoadProblem(error);
      throw new KernelError("GPU_UNAVAILABLE", `GPU requested, but no GPU backend loads (${problem.short}); ${problem.fix}, or use --device cpu`, { cause: error });
    }
    const backend = createCpuKernelBackend(cpuOptions);
    return { backend, device: "cpu", reason: `${backend.description}; no GPU (${describeGpuLoadProblem(error).short})` };
  }
  const backend = createTfjsKernelBackend(tf, { ...cpuOptions, description: `gpu (tfjs ${tf.getBackend()} backend)` });
  return { backend, device: "gpu", reason: `${backend.description}: ${device === "gpu" ? "GPU requested" : "GPU loadable"}` };
}

/** The kernel backend for a device choice (see `selectKernelBackend` for the reason it was chosen). */
export async function createKernelBackend(options: KernelBackendOptions = {}): Promise<KernelBackend> {
  return (await selectKernelBackend(options)).backend;
}
