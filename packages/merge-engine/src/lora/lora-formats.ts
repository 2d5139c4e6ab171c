import type { TensorDescriptor } from "@stmerge/core-tensors";

/**
 * LoRA formats as data: each module `X` of a LoRA file is recognised by the suffixes of its keys
 * (never by the file name). A role names what a tensor is, whatever the format spells it.
 * Sources: sd-scripts networks/lora.py, LyCORIS modules/{loha,lokr}.py, ComfyUI weight_adapter/*.
 */
export type LoraRole =
  | "down"
  | "up"
  | "mid"
  | "alpha"
  | "dora_scale"
  | "hada_w1_a"
  | "hada_w1_b"
  | "hada_w2_a"
  | "hada_w2_b"
  | "hada_t1"
  | "hada_t2"
  | "lokr_w1"
  | "lokr_w1_a"
  | "lokr_w1_b"
  | "lokr_w2"
  | "lokr_w2_a"
  | "lokr_w2_b"
  | "lokr_t2"
  | "diff";

export type LoraFormat = "lora" | "locon-tucker" | "loha" | "lokr" | "full";

/** How a key's suffix is spelled by one convention. Longest suffixes are tried first. */
export interface LoraSuffix {
  readonly suffix: string;
  readonly role: LoraRole;
  /** The convention, for reports: kohya, peft, diffusers, lycoris, comfyui. */
  readonly convention: string;
}

export const LORA_SUFFIXES: readonly LoraSuffix[] = ([
  { suffix: ".lora_down.weight", role: "down", convention: "kohya" },
  { suffix: ".lora_up.weight", role: "up", convention: "kohya" },
  { suffix: ".lora_mid.weight", role: "mid", convention: "kohya" },
  { suffix: ".lora_A.default.weight", role: "down", convention: "peft" },
  { suffix: ".lora_B.default.weight", role: "up", convention: "peft" },
  { suffix: ".lora_A.weight", role: "down", convention: "peft" },
  { suffix: ".lora_B.weight", role: "up", convention: "peft" },
  { suffix: ".lora_linear_layer.down.weight", role: "down", convention: "diffusers" },
  { suffix: ".lora_linear_layer.up.weight", role: "up", convention: "diffusers" },
  { suffix: ".lora.down.weight", role: "down", convention: "diffusers" },
  { suffix: ".lora.up.weight", role: "up", convention: "diffusers" },
  { suffix: "_lora.down.weight", role: "down", convention: "diffusers" },
  { suffix: "_lora.up.weight", role: "up", convention: "diffusers" },
  { suffix: ".alpha", role: "alpha", convention: "kohya" },
  { suffix: ".dora_scale", role: "dora_scale", convention: "kohya" },
  { suffix: ".hada_w1_a", role: "hada_w1_a", convention: "lycoris" },
  { suffix: ".hada_w1_b", role: "hada_w1_b", convention: "lycoris" },
  { suffix: ".hada_w2_a", role: "hada_w2_a", convention: "lycoris" },
  { suffix: ".hada_w2_b", role: "hada_w2_b", convention: "lycoris" },
  { suffix: ".hada_t1", role: "hada_t1", convention: "lycoris" },
  { suffix: ".hada_t2", role: "hada_t2", convention: "lycoris" },
  { suffix: ".lokr_w1_a", role: "lokr_w1_a", convention: "lycoris" },
  { suffix: ".lokr_w1_b", role: "lokr_w1_b", convention: "lycoris" },
  { suffix: ".lokr_w2_a", role: "lokr_w2_a", convention: "lycoris" },
  { suffix: ".lokr_w2_b", role: "lokr_w2_b", convention: "lycoris" },
  { suffix: ".lokr_w1", role: "lokr_w1", convention: "lycoris" },
  { suffix: ".lokr_w2", role: "lokr_w2", convention: "lycoris" },
  { suffix: ".lokr_t2", role: "lokr_t2", convention: "lycoris" },
  { suffix: ".diff", role: "diff", convention: "comfyui" },
] satisfies LoraSuffix[]).sort((a, b) => b.suffix.length - a.suffix.length);

/** One LoRA module: a name (the key without its suffix) and the tensor key of each role present. */
export interface LoraModule {
  readonly name: string;
  readonly format: LoraFormat;
  readonly convention: string;
  readonly parts: Readonly<Partial<Record<LoraRole, string>>>;
}

export interface LoraFileLayout {
  readonly modules: readonly LoraModule[];
  /** Keys with no known suffix, or modules whose parts form no known format (with the reason). */
  readonly unrecognised: readonly { readonly key: string; readonly reason: string }[];
}

function formatOf(parts: Partial<Record<LoraRole, string>>): LoraFormat | string {
  const has = (r: LoraRole) => parts[r] !== undefined;
  if (has("diff")) return "full";
  if (has("down") || has("up")) {
    if (!has("down") || !has("up")) return `has ${has("down") ? "a down" : "an up"} matrix without its ${has("down") ? "up" : "down"} partner`;
    return has("mid") ? "locon-tucker" : "lora";
  }
  if (has("hada_w1_a") || has("hada_w1_b") || has("hada_w2_a") || has("hada_w2_b")) {
    if (!(has("hada_w1_a") && has("hada_w1_b") && has("hada_w2_a") && has("hada_w2_b"))) return "LoHa module lacks one of hada_w1_a/w1_b/w2_a/w2_b";
    if (has("hada_t1") !== has("hada_t2")) return "LoHa module has only one of hada_t1/hada_t2";
    return "loha";
  }
  const w1 = has("lokr_w1") || (has("lokr_w1_a") && has("lokr_w1_b"));
  const w2 = has("lokr_w2") || (has("lokr_w2_a") && has("lokr_w2_b"));
  if (Object.keys(parts).some((k) => k.startsWith("lokr_"))) return w1 && w2 ? "lokr" : "LoKr module lacks w1 (lokr_w1 or lokr_w1_a+b) or w2 (lokr_w2 or lokr_w2_a+b)";
  return "has only an alpha, no weights";
}

/** Groups a LoRA file's keys into modules by suffix and names each module's format. */
export function detectLoraModules(descriptors: readonly Pick<TensorDescriptor, "name">[]): LoraFileLayout {
  const byName = new Map<string, { parts: Partial<Record<LoraRole, string>>; convention: string }>();
  const unrecognised: { key: string; reason: string }[] = [];
  for (const { name: key } of descriptors) {
    const hit = LORA_SUFFIXES.find((s) => key.endsWith(s.suffix) && key.length > s.suffix.length);
    if (!hit) {
      unrecognised.push({ key, reason: "no known LoRA suffix" });
      continue;
    }
    const name = key.slice(0, -hit.suffix.length);
    let module = byName.get(name);
    if (!module) byName.set(name, (module = { parts: {}, convention: hit.convention }));
    if (hit.role !== "alpha") module.convention = hit.convention;
    module.parts[hit.role] = key;
  }
  const modules: LoraModule[] = [];
  for (const [name, { parts, convention }] of byName) {
    const format = formatOf(parts);
    if (format === "lora" || format === "locon-tucker" || format === "loha" || format === "lokr" || format === "full") modules.push({ name, format, convention, parts });
    else unrecognised.push({ key: name, reason: format });
  }
  return { modules, unrecognised };
}

/** True when a file's keys look like a LoRA/LyCORIS file rather than a checkpoint. */
export function looksLikeLora(descriptors: readonly Pick<TensorDescriptor, "name">[]): boolean {
  if (descriptors.length === 0) return false;
  const recognised = descriptors.filter((d) => LORA_SUFFIXES.some((s) => d.name.endsWith(s.suffix) && s.role !== "alpha" && s.role !== "diff")).length;
  return recognised * 2 >= descriptors.length;
}
