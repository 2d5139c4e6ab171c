import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import { KernelError } from "./errors.js";
import type { KernelBackend } from "./kernel-backend.js";

/** An opaque TensorFlow.js tensor. */
export interface TfTensor {
  dispose(): void;
  data(): Promise<Float32Array | Int32Array | Uint8Array>;
}

/**
 * The part of the `@tensorflow/tfjs-core` namespace the adapter uses (functional API only:
 * chained ops are not registered when tfjs-core is loaded alone under Node). Typed
 * structurally so our published types do not depend on tfjs being installed.
 */
export interface TfNamespace {
  tensor1d(values: Float32Array, dtype?: "float32"): TfTensor;
  scalar(value: number, dtype?: "float32"): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  sub(a: TfTensor, b: TfTensor): TfTensor;
  mul(a: TfTensor, b: TfTensor): TfTensor;
  abs(a: TfTensor): TfTensor;
  sign(a: TfTensor): TfTensor;
  clipByValue(a: TfTensor, lo: number, hi: number): TfTensor;
  sum(a: TfTensor): TfTensor;
  topk(a: TfTensor, k: number, sorted?: boolean): { values: TfTensor; indices: TfTensor };
  tidy<T>(fn: () => T): T;
  getBackend(): string;
}

/**
 * The kernel interface over TensorFlow.js tensors (GPU through tfjs-node-gpu; tested on
 * tfjs-core's CPU backend). tfjs has no F16/BF16/F8 dtypes, so decode/encode run on the CPU
 * kernels and only F32 values cross to tfjs. Sums are F32 on the device, not F64.
 */
export function createTfjsKernelBackend(tf: TfNamespace, options: { workers?: number; description?: string } = {}): KernelBackend {
  const cpu = createCpuKernelBackend(options.workers === undefined ? {} : { workers: options.workers });
  let closed = false;

  function check(): void {
    if (closed) throw new KernelError("KERNEL_CLOSED", "kernel backend used after close()");
  }
  function sameLength(name: string, arrays: readonly Float32Array[], out?: Float32Array): number {
    const length = arrays[0]!.length;
    for (const [i, x] of arrays.entries()) if (x.length !== length) throw new KernelError("KERNEL_LENGTH_MISMATCH", `${name} input ${i}: length ${x.length} does not match ${length}`);
    if (out && out.length !== length) throw new KernelError("KERNEL_LENGTH_MISMATCH", `${name} output: length ${out.length} does not match ${length}`);
    return length;
  }

  /** Uploads the inputs, runs `build` inside tidy, downloads into `out` (or a new array). */
  async function elementwise(name: string, inputs: readonly Float32Array[], out: Float32Array | undefined, build: (xs: TfTensor[]) => TfTensor): Promise<Float32Array> {
    check();
    const length = sameLength(name, inputs, out);
    const result = tf.tidy(() => build(inputs.map((x) => tf.tensor1d(x, "float32"))));
    try {
      const data = (await result.data()) as Float32Array;
      const target = out ?? cpu.allocF32(length);
      target.set(data);
      return target;
    } finally {
      result.dispose();
    }
  }

  async function scalarOf(build: () => TfTensor): Promise<number> {
    check();
    const t = tf.tidy(build);
    try {
      return (await t.data())[0]!;
    } finally {
      t.dispose();
    }
  }

  const s = (v: number) => tf.scalar(v, "float32");

  return {
    kind: "tfjs",
    description: options.description ?? `tfjs (${tf.getBackend()} backend)`,
    parallelism: 1,
    allocF32: (length) => cpu.allocF32(length),
    allocBytes: (byteLength) => cpu.allocBytes(byteLength),
    decode: (bytes, dtype, out) => (check(), cpu.decode(bytes, dtype, out)),
    encode: (values, dtype, out) => (check(), cpu.encode(values, dtype, out)),
    weightedSum(inputs, weights, out) {
      if (inputs.length === 0) return Promise.reject(new KernelError("KERNEL_NO_INPUTS", "weightedSum needs at least one input"));
      if (weights.length !== inputs.length) return Promise.reject(new KernelError("KERNEL_LENGTH_MISMATCH", `weightedSum: ${weights.length} weights for ${inputs.length} inputs`));
      return elementwise("weightedSum", inputs, out, (xs) => xs.map((x, i) => tf.mul(x, s(weights[i]!))).reduce((acc, x) => tf.add(acc, x)));
    },
    scale: (a, k, out) => elementwise("scale", [a], out, ([x]) => tf.mul(x!, s(k))),
    add: (a, b, out) => elementwise("add", [a, b], out, ([x, y]) => tf.add(x!, y!)),
    sub: (a, b, out) => elementwise("sub", [a, b], out, ([x, y]) => tf.sub(x!, y!)),
    lerp: (a, b, t, out) => elementwise("lerp", [a, b], out, ([x, y]) => tf.add(x!, tf.mul(s(t), tf.sub(y!, x!)))),
    abs: (a, out) => elementwise("abs", [a], out, ([x]) => tf.abs(x!)),
    sign: (a, out) => elementwise("sign", [a], out, ([x]) => tf.sign(x!)),
    clamp: (a, lo, hi, out) => elementwise("clamp", [a], out, ([x]) => tf.clipByValue(x!, lo, hi)),
    async dot(a, b) {
      sameLength("dot", [a, b]);
      if (a.length === 0) return 0;
      return scalarOf(() => tf.sum(tf.mul(tf.tensor1d(a, "float32"), tf.tensor1d(b, "float32"))));
    },
    async norm(a) {
      if (a.length === 0) return 0;
      const x = a;
      return Math.sqrt(await scalarOf(() => tf.sum(tf.mul(tf.tensor1d(x, "float32"), tf.tensor1d(x, "float32")))));
    },
    async topKThreshold(a, k) {
      check();
      if (k <= 0) return Infinity;
      if (k >= a.length) return 0;
      const values = tf.tidy(() => tf.topk(tf.abs(tf.tensor1d(a, "float32")), k, true).values);
      try {
        const data = await values.data();
        return data[k - 1]!;
      } finally {
        values.dispose();
      }
    },
    async close() {
      closed = true;
      await cpu.close();
    },
  };
}
