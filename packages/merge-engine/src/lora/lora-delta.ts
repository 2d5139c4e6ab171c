import { kronF32, matmulF32, shapeElementCount } from "@stmerge/core-tensors";
import { MergeError } from "../merge-error.js";
import type { LoraModule, LoraRole } from "./lora-formats.js";

/** A LoRA tensor decoded to F32 with its shape. */
export interface LoraTensor {
  readonly values: Float32Array;
  readonly shape: readonly number[];
}

/** How a module's scale was decided, for reports. */
export type ScaleRule = "alpha/rank" | "no alpha → 1" | "alpha 0 → 0" | "full factors → 1" | "peft lora_alpha/r" | "peft lora_alpha/√r";

export interface LoraDelta {
  /** ΔW in the module's natural layout ([out, in] or [out, in, kh, kw]), before the scale. */
  readonly values: Float32Array;
  readonly shape: readonly number[];
  readonly scale: number;
  readonly scaleRule: ScaleRule;
  readonly rank: number | undefined;
}

/** PEFT's adapter config, when the file carries it in `__metadata__["lora_adapter_metadata"]`. */
export interface PeftAlpha {
  readonly loraAlpha: number;
  readonly r: number;
  readonly useRslora: boolean;
}

const rows = (t: LoraTensor) => t.shape[0] ?? 1;
const cols = (t: LoraTensor) => shapeElementCount(t.shape) / Math.max(rows(t), 1);

/** m[p, r, k, l] = Σ_{i,j} t[i, j, k, l] · b[j, r] · a[i, p] (LyCORIS / ComfyUI Tucker rebuild). */
function tuckerRebuild(t: LoraTensor, b: LoraTensor, a: LoraTensor): LoraTensor {
  const [ti, tj, kh = 1, kw = 1] = t.shape as number[];
  const R = cols(b);
  const P = cols(a);
  const kk = kh * kw;
  // First contract j: u[i, r, kk] = Σ_j t[i, j, kk] · b[j, r]
  const u = new Float32Array(ti! * R * kk);
  for (let i = 0; i < ti!; i++)
    for (let j = 0; j < tj!; j++)
      for (let r = 0; r < R; r++) {
        const bv = b.values[j * R + r]!;
        for (let q = 0; q < kk; q++) u[(i * R + r) * kk + q] = Math.fround(u[(i * R + r) * kk + q]! + Math.fround(t.values[(i * tj! + j) * kk + q]! * bv));
      }
  // then i: m[p, r, kk] = Σ_i u[i, r, kk] · a[i, p]
  const m = new Float32Array(P * R * kk);
  for (let i = 0; i < ti!; i++)
    for (let p = 0; p < P; p++) {
      const av = a.values[i * P + p]!;
      for (let q = 0; q < R * kk; q++) m[p * R * kk + q] = Math.fround(m[p * R * kk + q]! + Math.fround(u[i * R * kk + q]! * av));
    }
  return { values: m, shape: [P, R, kh, kw] };
}

function product(up: LoraTensor, down: LoraTensor): LoraTensor {
  const r = rows(down);
  const out = rows(up);
  if (cols(up) !== r) throw new Error(`up is ${JSON.stringify(up.shape)} but down is ${JSON.stringify(down.shape)}`);
  const inner = cols(down);
  const values = matmulF32(up.values, down.values, out, r, inner);
  return { values, shape: [out, ...down.shape.slice(1)] };
}

/** Scale of a kohya/PEFT LoRA module: alpha/rank; no alpha → PEFT's lora_alpha/r (or /√r) if recorded, else 1; alpha 0 → 0. */
export function alphaScale(alpha: LoraTensor | undefined, rank: number, peft: PeftAlpha | undefined): { scale: number; scaleRule: ScaleRule } {
  if (!alpha) {
    if (peft) return peft.useRslora ? { scale: peft.loraAlpha / Math.sqrt(rank), scaleRule: "peft lora_alpha/√r" } : { scale: peft.loraAlpha / rank, scaleRule: "peft lora_alpha/r" };
    return { scale: 1, scaleRule: "no alpha → 1" };
  }
  const a = alpha.values[0] ?? 0;
  // alpha 0 gives no effect, as kohya's merge_lora.py and ComfyUI apply it.
  if (a === 0) return { scale: 0, scaleRule: "alpha 0 → 0" };
  return { scale: a / rank, scaleRule: "alpha/rank" };
}

/**
 * ΔW of one module and its scale (the math ComfyUI and A1111 apply when they load a LoRA):
 * LoRA `up @ down` (convs flattened), LoCon Tucker `up · mid · down`, LoHa
 * `(w1a@w1b) ⊙ (w2a@w2b)`, LoKr `kron(w1, w2)`, full `diff`.
 */
export function loraDelta(module: LoraModule, tensor: (role: LoraRole) => LoraTensor | undefined, peft?: PeftAlpha): LoraDelta {
  const need = (role: LoraRole): LoraTensor => {
    const t = tensor(role);
    if (!t) throw new MergeError("LORA_MISSING_PART", `LoRA module ${module.name} has no ${role} tensor`);
    return t;
  };
  const alpha = tensor("alpha");
  try {
    switch (module.format) {
      case "full": {
        const d = need("diff");
        return { values: d.values, shape: d.shape, scale: 1, scaleRule: "no alpha → 1", rank: undefined };
      }
      case "lora": {
        const down = need("down");
        const up = need("up");
        const rank = rows(down);
        const d = product(up, down);
        return { ...d, ...alphaScale(alpha, rank, peft), rank };
      }
      case "locon-tucker": {
        const down = need("down");
        const up = need("up");
        const mid = need("mid");
        const rank = rows(down);
        const [m0, m1, kh = 1, kw = 1] = mid.shape as number[];
        const out = rows(up);
        const inn = cols(down);
        // ΔW[o, i, h, w] = Σ_{m,n} up[o, m] · mid[m, n, h, w] · down[n, i]
        const upMid = matmulF32(up.values, mid.values, out, m0!, m1! * kh * kw); // [o, n, hw]
        const values = new Float32Array(out * inn * kh * kw);
        const hw = kh * kw;
        for (let o = 0; o < out; o++)
          for (let n = 0; n < m1!; n++)
            for (let q = 0; q < hw; q++) {
              const v = upMid[(o * m1! + n) * hw + q]!;
              for (let i = 0; i < inn; i++) values[(o * inn + i) * hw + q] = Math.fround(values[(o * inn + i) * hw + q]! + Math.fround(v * down.values[n * inn + i]!));
            }
        return { values, shape: [out, inn, kh, kw], ...alphaScale(alpha, rank, peft), rank };
      }
      case "loha": {
        const w1a = need("hada_w1_a");
        const w1b = need("hada_w1_b");
        const w2a = need("hada_w2_a");
        const w2b = need("hada_w2_b");
        const t1 = tensor("hada_t1");
        const t2 = tensor("hada_t2");
        const m1 = t1 ? tuckerRebuild(t1, w1b, w1a) : product(w1a, w1b);
        const m2 = t2 ? tuckerRebuild(t2, w2b, w2a) : product(w2a, w2b);
        if (m1.values.length !== m2.values.length) throw new Error(`the two Hadamard factors have ${m1.values.length} and ${m2.values.length} elements`);
        const values = m1.values;
        for (let i = 0; i < values.length; i++) values[i] = Math.fround(values[i]! * m2.values[i]!);
        const rank = rows(w1b);
        const { scale, scaleRule } = alphaScale(alpha, rank, undefined);
        return { values, shape: m1.shape, scale, scaleRule, rank };
      }
      case "lokr": {
        let dim: number | undefined;
        const w1full = tensor("lokr_w1");
        let w1: LoraTensor;
        if (w1full) w1 = w1full;
        else {
          const b = need("lokr_w1_b");
          dim = rows(b);
          w1 = product(need("lokr_w1_a"), b);
        }
        const w2full = tensor("lokr_w2");
        let w2: LoraTensor;
        if (w2full) w2 = w2full;
        else {
          const b = need("lokr_w2_b");
          dim = rows(b);
          const t2 = tensor("lokr_t2");
          w2 = t2 ? tuckerRebuild(t2, b, need("lokr_w2_a")) : product(need("lokr_w2_a"), b);
        }
        const [ar, ac] = [w1.shape[0] ?? 1, w1.shape[1] ?? 1];
        const [br, bc, ...kernel] = w2.shape as number[];
        const inner = shapeElementCount(kernel);
        const values = kronF32(w1.values, ar, ac, w2.values, br!, bc ?? 1, inner);
        const shape = [ar * br!, ac * (bc ?? 1), ...kernel];
        // ComfyUI lokr.py: alpha/dim when a factor is decomposed and alpha is present, else 1.
        const a = alpha?.values[0];
        if (dim === undefined || a === undefined) return { values, shape, scale: 1, scaleRule: dim === undefined ? "full factors → 1" : "no alpha → 1", rank: dim };
        return { values, shape, scale: a / dim, scaleRule: a === 0 ? "alpha 0 → 0" : "alpha/rank", rank: dim };
      }
    }
  } catch (error) {
    if (error instanceof MergeError) throw error;
    throw new MergeError("LORA_BAD_SHAPES", `LoRA module ${module.name}: ${(error as Error).message}`);
  }
}
