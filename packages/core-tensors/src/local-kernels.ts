import { endianness } from "node:os";
import { KernelError } from "./errors.js";
import { counterDrawsModule } from "./counter-draws-module.js";
import { floatCodecsModule, type FloatCodecs } from "./float-codecs-module.js";
import { kernelOpsModule, type KernelOps } from "./kernel-ops-module.js";
import { SIMD_KERNELS_WASM_BASE64 } from "./wasm-kernels-bytes.js";
import { wasmKernelsModule } from "./wasm-kernels-module.js";

// The code the workers run, instantiated once (lazily: the F16 table costs ~1 ms) for work on
// the calling thread.
let codecs: FloatCodecs | undefined;
let ops: KernelOps | undefined;
let simdOps: KernelOps | null | undefined;

/** safetensors and torch files are little-endian and typed-array views use the host's order. */
export function assertLittleEndianHost(): void {
  if (endianness() !== "LE") throw new KernelError("HOST_BIG_ENDIAN", "stmerge needs a little-endian CPU: tensor files are little-endian and conversions use native typed arrays");
}

export function localCodecs(): FloatCodecs {
  if (!codecs) assertLittleEndianHost();
  codecs ??= floatCodecsModule();
  return codecs;
}

/** The JavaScript kernels (the reference), or with `simd` the WebAssembly SIMD ones where the engine has them. */
export function localOps(simd = false): KernelOps {
  ops ??= kernelOpsModule(localCodecs(), counterDrawsModule());
  if (!simd) return ops;
  if (simdOps === undefined) simdOps = wasmKernelsModule(ops, SIMD_KERNELS_WASM_BASE64) ?? null;
  return simdOps ?? ops;
}

/**
 * Whether the WebAssembly SIMD kernels run here: the engine validates the module, and the
 * environment does not force the JavaScript kernels (STMERGE_KERNELS=js).
 */
export function simdKernelsAvailable(): boolean {
  if (process.env.STMERGE_KERNELS === "js") return false;
  return localOps(true) !== localOps(false);
}
