import { endianness } from "node:os";
import { KernelError } from "./errors.js";
import { floatCodecsModule, type FloatCodecs } from "./float-codecs-module.js";
import { kernelOpsModule, type KernelOps } from "./kernel-ops-module.js";

// The code the workers run, instantiated once (lazily: the F16 table costs ~1 ms) for work on
// the calling thread.
let codecs: FloatCodecs | undefined;
let ops: KernelOps | undefined;

/** safetensors and torch files are little-endian and typed-array views use the host's order. */
export function assertLittleEndianHost(): void {
  if (endianness() !== "LE") throw new KernelError("HOST_BIG_ENDIAN", "stmerge needs a little-endian CPU: tensor files are little-endian and conversions use native typed arrays");
}

export function localCodecs(): FloatCodecs {
  if (!codecs) assertLittleEndianHost();
  codecs ??= floatCodecsModule();
  return codecs;
}

export function localOps(): KernelOps {
  ops ??= kernelOpsModule(localCodecs());
  return ops;
}
