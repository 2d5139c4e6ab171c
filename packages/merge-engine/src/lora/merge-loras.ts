import { encodeFromF32, PRECISION_DTYPE, randomizedSvd, shapeElementCount, writeSafetensors, type InMemoryTensor, type Precision, type ProgressCallback } from "@stmerge/core-tensors";
import { MergeError } from "../merge-error.js";
import { alphaScale, loraDelta } from "./lora-delta.js";
import type { LoraModule } from "./lora-formats.js";
import { loraTensorOf, type LoadedLora } from "./load-lora.js";

export interface LoraMergeInput {
  readonly lora: LoadedLora;
  /** The effective ΔW factor of this LoRA in the result (r, not r·|r| as kohya's sqrt split gives). */
  readonly weight: number;
}

export interface MergeLorasOptions {
  readonly outputPath: string;
  /** Largest rank of a merged module; concatenation is used when the ranks' sum fits. */
  readonly rank: number;
  /** Output precision (default fp32: folded scales are kept exactly). */
  readonly precision?: Precision;
  readonly overwrite?: boolean;
  readonly onProgress?: ProgressCallback | undefined;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface MergedModule {
  readonly name: string;
  /** concat: exact (scales folded into up, alpha = Σ ranks); svd: Σ wᵢ·sᵢ·ΔWᵢ re-compressed to `rank`. */
  readonly method: "concat" | "svd";
  readonly rank: number;
  readonly sources: number;
  /** ‖ΔW − up·down‖_F / ‖ΔW‖_F (0 for concat). */
  readonly relativeError: number;
}

export interface MergeLorasResult {
  readonly outputPath: string;
  readonly modules: readonly MergedModule[];
}

const sameExceptAxis = (a: readonly number[], b: readonly number[], axis: number) => a.length === b.length && a.every((x, i) => i === axis || x === b[i]);

/**
 * Merges LoRAs into one whose bake equals Σ wᵢ · (bake delta of LoRA i). Per module: when every
 * contributor is a plain LoRA (down/up) and their ranks sum to at most `rank`, the factors are
 * concatenated with wᵢ·scaleᵢ folded into each up and alpha = Σ rᵢ, which is exact (kohya's
 * --concat keeps the first alpha and is not). Otherwise (LoHa, LoKr, Tucker, full diff, or too
 * many ranks) ΔW = Σ wᵢ·sᵢ·ΔWᵢ is rebuilt and truncated by randomized SVD to `rank`, alpha = rank.
 */
export async function mergeLoras(inputs: readonly LoraMergeInput[], options: MergeLorasOptions): Promise<MergeLorasResult> {
  if (!(Number.isSafeInteger(options.rank) && options.rank > 0 && options.rank <= 4096)) throw new MergeError("LORA_BAD_RANK", `rank must be an integer in 1..4096, got ${options.rank}`);
  if (inputs.length === 0) throw new MergeError("LORA_MERGE_NO_INPUTS", "no LoRAs to merge");
  const names: string[] = [];
  const byName = new Map<string, { input: LoraMergeInput; module: LoraModule }[]>();
  for (const input of inputs) {
    if (input.lora.unrecognised.length > 0) {
      const u = input.lora.unrecognised[0]!;
      throw new MergeError("LORA_MERGE_UNRECOGNISED", `${input.lora.path}: ${input.lora.unrecognised.length} key(s) form no known LoRA module (first: ${u.key}: ${u.reason}); nothing written`, { file: input.lora.path });
    }
    const dora = input.lora.modules.find((m) => m.parts.dora_scale !== undefined);
    if (dora) {
      throw new MergeError("LORA_MERGE_DORA", `${input.lora.path}: module ${dora.name} is DoRA (dora_scale): its magnitude normalisation is not a low-rank sum, so it cannot be merged; bake it with \`stmerge lora bake\`; nothing written`, { file: input.lora.path });
    }
    for (const module of input.lora.modules) {
      let list = byName.get(module.name);
      if (!list) {
        byName.set(module.name, (list = []));
        names.push(module.name);
      }
      list.push({ input, module });
    }
  }
  const dtype = PRECISION_DTYPE[options.precision ?? "fp32"];
  const tensors: InMemoryTensor[] = [];
  const modules: MergedModule[] = [];
  const put = (name: string, down: Float32Array, downShape: number[], up: Float32Array, upShape: number[], alpha: number) =>
    tensors.push(
      { name: `${name}.lora_down.weight`, dtype, shape: downShape, data: encodeFromF32(down, dtype) },
      { name: `${name}.lora_up.weight`, dtype, shape: upShape, data: encodeFromF32(up, dtype) },
      { name: `${name}.alpha`, dtype, shape: [], data: encodeFromF32(Float32Array.of(alpha), dtype) },
    );
  for (const [index, name] of names.entries()) {
    options.onProgress?.({ phase: "lora-merge", bytesDone: index, bytesTotal: names.length, tensor: name, itemsDone: index, itemsTotal: names.length });
    const parts = byName.get(name)!;
    const factors = parts.map(({ input, module }) => {
      const down = module.format === "lora" ? loraTensorOf(input.lora, module, "down") : undefined;
      const up = module.format === "lora" ? loraTensorOf(input.lora, module, "up") : undefined;
      return { input, module, down, up };
    });
    const first = factors[0]!;
    const totalRank = factors.reduce((s, f) => s + (f.down?.shape[0] ?? Infinity), 0);
    const concat =
      totalRank <= options.rank &&
      factors.every((f) => f.down && f.up && first.down && first.up && sameExceptAxis(f.down.shape, first.down.shape, 0) && sameExceptAxis(f.up.shape, first.up.shape, 1));
    if (concat) {
      const out = first.up!.shape[0]!;
      const inner = shapeElementCount(first.down!.shape) / first.down!.shape[0]!;
      const up = new Float32Array(out * totalRank);
      const down = new Float32Array(totalRank * inner);
      let offset = 0;
      for (const f of factors) {
        const r = f.down!.shape[0]!;
        const { scale } = alphaScale(loraTensorOf(f.input.lora, f.module, "alpha"), r, f.input.lora.peft);
        const k = Math.fround(f.input.weight * scale);
        for (let o = 0; o < out; o++) for (let c = 0; c < r; c++) up[o * totalRank + offset + c] = Math.fround(k * f.up!.values[o * r + c]!);
        down.set(f.down!.values.subarray(0, r * inner), offset * inner);
        offset += r;
      }
      const upShape = first.up!.shape.length === 4 ? [out, totalRank, 1, 1] : [out, totalRank];
      put(name, down, [totalRank, ...first.down!.shape.slice(1)], up, upShape, totalRank);
      modules.push({ name, method: "concat", rank: totalRank, sources: factors.length, relativeError: 0 });
      continue;
    }
    let sum: Float32Array | undefined;
    let shape: readonly number[] = [];
    for (const f of factors) {
      const d = loraDelta(f.module, (role) => loraTensorOf(f.input.lora, f.module, role), f.input.lora.peft);
      const k = Math.fround(f.input.weight * d.scale);
      if (!sum) {
        sum = new Float32Array(d.values.length);
        shape = d.shape;
      } else if (d.values.length !== sum.length) {
        throw new MergeError("LORA_MERGE_SHAPES", `${f.input.lora.path}: module ${name} has ΔW ${JSON.stringify(d.shape)}, another LoRA has ${JSON.stringify(shape)}; these LoRAs are not for the same model`, { file: f.input.lora.path });
      }
      for (let i = 0; i < sum.length; i++) sum[i] = Math.fround(sum[i]! + Math.fround(k * d.values[i]!));
    }
    const out = shape[0]!;
    const inner = sum!.length / out;
    let energy = 0;
    for (const v of sum!) energy += v * v;
    const svd = randomizedSvd(sum!, out, inner, options.rank, { seed: index });
    const r = svd.rank;
    const up = new Float32Array(out * r);
    for (let i = 0; i < out; i++) for (let c = 0; c < r; c++) up[i * r + c] = svd.u[i * r + c]! * svd.s[c]!;
    const kept = svd.s.reduce((s, x) => s + x * x, 0);
    const four = shape.length === 4;
    put(name, Float32Array.from(svd.vh), four ? [r, ...shape.slice(1)] : [r, inner], up, four ? [out, r, 1, 1] : [out, r], r);
    modules.push({ name, method: "svd", rank: r, sources: factors.length, relativeError: energy === 0 ? 0 : Math.sqrt(Math.max(energy - kept, 0) / energy) });
  }
  const metadata: Record<string, string> = {
    ss_network_module: "networks.lora",
    ss_network_dim: String(Math.max(...modules.map((m) => m.rank))),
    ss_network_alpha: String(Math.max(...modules.map((m) => m.rank))),
    stmerge_lora_merge: JSON.stringify(inputs.map(({ lora, weight }) => ({ name: lora.name, sha256: lora.sha256, weight }))),
    ...(options.metadata ?? {}),
  };
  await writeSafetensors(options.outputPath, tensors, metadata, { overwrite: options.overwrite ?? false });
  return { outputPath: options.outputPath, modules };
}
