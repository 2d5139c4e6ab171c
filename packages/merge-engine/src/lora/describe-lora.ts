import type { TensorDescriptor } from "@stmerge/core-tensors";
import { detectLoraModules, looksLikeLora, type LoraFormat } from "./lora-formats.js";

/** What `inspect` says about a LoRA/LyCORIS file, from its header (and alpha scalars when given). */
export interface LoraSummary {
  readonly modules: number;
  readonly formats: Readonly<Partial<Record<LoraFormat, number>>>;
  readonly conventions: readonly string[];
  /** Smallest and largest rank (down.shape[0] / factor rank) over the modules that have one. */
  readonly rank: { readonly min: number; readonly max: number } | undefined;
  /** Distinct alpha values, when read (undefined: the file has no alpha tensors or they were not read). */
  readonly alphas: readonly number[] | undefined;
  /** Modules per target part: unet/transformer, te (SD1/2), te1, te2, te3. */
  readonly targets: Readonly<Record<string, number>>;
  /** SD1, SD2, SDXL, Flux, or unknown; with the evidence. */
  readonly baseArchitecture: string;
  readonly evidence: string | undefined;
  readonly unrecognised: number;
}

const PARTS: readonly [RegExp, string][] = [
  [/^(lora_unet_|unet\.|lycoris_|diffusion_model\.|transformer\.)/, "unet"],
  [/^lora_te1_/, "te1"],
  [/^lora_te2_|^text_encoder_2\./, "te2"],
  [/^lora_te3_|^text_encoder_3\./, "te3"],
  [/^lora_te_|^text_encoder\./, "te"],
];

/** Cross-attention key width → base model (the width of attn2.to_k's input, i.e. lora_down's columns). */
const CONTEXT_DIMS: Readonly<Record<number, string>> = { 768: "SD1", 1024: "SD2", 2048: "SDXL" };

/** A summary of a LoRA file, or undefined when its keys do not look like a LoRA. */
export function describeLora(descriptors: readonly TensorDescriptor[], alphas?: ReadonlyMap<string, number>): LoraSummary | undefined {
  if (!looksLikeLora(descriptors)) return undefined;
  const layout = detectLoraModules(descriptors);
  const byName = new Map(descriptors.map((d) => [d.name, d]));
  const formats: Partial<Record<LoraFormat, number>> = {};
  const conventions = new Set<string>();
  const targets: Record<string, number> = {};
  let min = Infinity;
  let max = 0;
  let evidence: string | undefined;
  let base = "unknown";
  const alphaValues = new Set<number>();
  for (const m of layout.modules) {
    formats[m.format] = (formats[m.format] ?? 0) + 1;
    conventions.add(m.convention);
    const part = PARTS.find(([p]) => p.test(m.name))?.[1] ?? "other";
    targets[part] = (targets[part] ?? 0) + 1;
    const rankKey = m.parts.down ?? m.parts.hada_w1_b ?? m.parts.lokr_w2_b ?? m.parts.lokr_w1_b;
    const rank = rankKey ? byName.get(rankKey)?.shape[0] : undefined;
    if (rank !== undefined) {
      min = Math.min(min, rank);
      max = Math.max(max, rank);
    }
    if (m.parts.alpha && alphas?.has(m.parts.alpha)) alphaValues.add(alphas.get(m.parts.alpha)!);
    const down = m.parts.down ? byName.get(m.parts.down) : undefined;
    if (base === "unknown" && down && /attn2[._]to_k$/.test(m.name)) {
      const dim = down.shape[1]!;
      if (CONTEXT_DIMS[dim]) {
        base = CONTEXT_DIMS[dim]!;
        evidence = `attn2.to_k input width ${dim}`;
      }
    }
  }
  if (base === "unknown") {
    const names = layout.modules.map((m) => m.name);
    if (names.some((n) => /double_blocks|single_blocks|single_transformer_blocks/.test(n))) [base, evidence] = ["Flux", "double/single blocks"];
    else if ((targets.te2 ?? 0) > 0 && (targets.te1 ?? 0) + (targets.unet ?? 0) > 0) [base, evidence] = ["SDXL", "te1 + te2 text encoders"];
  }
  return {
    modules: layout.modules.length,
    formats,
    conventions: [...conventions],
    rank: max > 0 ? { min, max } : undefined,
    alphas: alphas && alphaValues.size ? [...alphaValues].sort((a, b) => a - b) : undefined,
    targets,
    baseArchitecture: base,
    evidence,
    unrecognised: layout.unrecognised.length,
  };
}
