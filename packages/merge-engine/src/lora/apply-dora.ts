import { shapeElementCount } from "@stmerge/core-tensors";

/**
 * DoRA (weight-decomposed LoRA, kohya/LyCORIS `dora_scale` key): the module stores a magnitude m
 * and the weight becomes W″ = m · (W + s·ΔW) / ‖W + s·ΔW‖, the norm taken per group of the axis
 * the magnitude belongs to:
 * - input axis (LyCORIS default, `dora_scale` shaped [1, in, 1, 1]): one norm per input channel,
 *   over the output rows and kernel positions (ComfyUI `weight_decompose`, LyCORIS wd_on_out=False);
 * - output axis (`dora_scale` shaped [out, 1, …]: LyCORIS wd_on_out=True, and what PEFT's
 *   `lora_magnitude_vector` is): one norm per output row, over inputs and kernel positions.
 * Which one a file uses follows ComfyUI's rule: the magnitude's first dimension equals the
 * weight's row count → output axis. On the output axis ComfyUI divides by ‖W‖ rather than
 * ‖W + s·ΔW‖; we follow the trainers (LyCORIS, PEFT) and the paper. ε = 2⁻²³ (F32 machine
 * epsilon) is added to each norm as ComfyUI and LyCORIS do. A strength m′ ≠ 1 blends as ComfyUI
 * does: W′ = W + m′·(W″ − W). All arithmetic is F32 (norm sums in F64).
 */
export type DoraAxis = "input" | "output";

const EPSILON = 2 ** -23;

/**
 * The axis a magnitude of `scaleShape` normalises for a target slice of `rows` rows of a weight
 * shaped `targetShape`, or why it fits neither.
 */
export function doraAxis(scaleShape: readonly number[], rows: number, targetShape: readonly number[]): DoraAxis | string {
  const count = shapeElementCount(scaleShape);
  const inputs = targetShape[1] ?? 1;
  if (scaleShape[0] === rows && count === rows) return "output";
  if (count === inputs && (scaleShape[0] ?? 1) === 1) return "input";
  return `dora_scale ${JSON.stringify(scaleShape)} fits neither the ${rows} output rows nor the ${inputs} input channels of ${JSON.stringify(targetShape)}`;
}

/**
 * Applies one DoRA module to `rows` rows of `w` (the whole target tensor, F32, row-major
 * [rows·inputs·kernel]) starting at row `rowStart`: ΔW (`delta`, same layout as the slice) scaled
 * by the module's alpha scale `scale`, normalised per `axis` group, times `magnitude`, blended
 * with `strength`.
 */
export function applyDora(w: Float32Array, targetShape: readonly number[], rowStart: number, rows: number, delta: Float32Array, scale: number, magnitude: Float32Array, axis: DoraAxis, strength: number): void {
  const inputs = targetShape[1] ?? 1;
  const kernel = shapeElementCount(targetShape.slice(2));
  const perRow = inputs * kernel;
  const base = rowStart * perRow;
  const n = rows * perRow;
  const calc = new Float32Array(n);
  const s = Math.fround(scale);
  for (let i = 0; i < n; i++) calc[i] = Math.fround(w[base + i]! + Math.fround(delta[i]! * s));
  const groups = axis === "output" ? rows : inputs;
  const group = axis === "output" ? (i: number) => Math.floor(i / perRow) : (i: number) => Math.floor((i % perRow) / kernel);
  const squares = new Float64Array(groups);
  for (let i = 0; i < n; i++) squares[group(i)]! += calc[i]! * calc[i]!;
  const factor = new Float32Array(groups);
  for (let g = 0; g < groups; g++) factor[g] = Math.fround(magnitude[g]! / Math.fround(Math.fround(Math.sqrt(squares[g]!)) + EPSILON));
  const m = Math.fround(strength);
  for (let i = 0; i < n; i++) {
    const decomposed = Math.fround(calc[i]! * factor[group(i)]!);
    const before = w[base + i]!;
    w[base + i] = m === 1 ? decomposed : Math.fround(before + Math.fround(m * Math.fround(decomposed - before)));
  }
}
