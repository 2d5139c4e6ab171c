import { floatCodecsModule, type FloatCodecs } from "./float-codecs-module.js";
import { kernelOpsModule, type KernelOps } from "./kernel-ops-module.js";

// The code the workers run, instantiated once (lazily: the F16 table costs ~1 ms) for work on
// the calling thread.
let codecs: FloatCodecs | undefined;
let ops: KernelOps | undefined;

export function localCodecs(): FloatCodecs {
  codecs ??= floatCodecsModule();
  return codecs;
}

export function localOps(): KernelOps {
  ops ??= kernelOpsModule(localCodecs());
  return ops;
}
