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

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split("\n")[0] ?? "").trim().slice(0, 200);
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
      throw new KernelError("GPU_UNAVAILABLE", `GPU requested but @tensorflow/tfjs-node-gpu could not be loaded: ${firstLine(error)}`, { cause: error });
    }
    const backend = createCpuKernelBackend(cpuOptions);
    return { backend, device: "cpu", reason: `${backend.description}: GPU backend not loadable (${firstLine(error)})` };
  }
  const backend = createTfjsKernelBackend(tf, { ...cpuOptions, description: `gpu (tfjs ${tf.getBackend()} backend)` });
  return { backend, device: "gpu", reason: `${backend.description}: ${device === "gpu" ? "GPU requested" : "GPU loadable"}` };
}

/** The kernel backend for a device choice (see `selectKernelBackend` for the reason it was chosen). */
export async function createKernelBackend(options: KernelBackendOptions = {}): Promise<KernelBackend> {
  return (await selectKernelBackend(options)).backend;
}
