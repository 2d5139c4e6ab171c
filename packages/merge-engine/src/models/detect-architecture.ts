import type { TensorDescriptor } from "@stmerge/core-tensors";
import {
  ARCHITECTURE_LABELS,
  CONV_IN_VARIANTS,
  KEY_LAYOUTS,
  NAME_METADATA_FIELDS,
  PREDICTION_METADATA,
  SDXL_DERIVATIVE_HINTS,
  TEXT_ENCODER_SIGNATURES,
  TRANSFORMER_SIGNATURES,
  UNET_CONTEXT_DIMS,
  UNET_CONTEXT_DIM_PROBE,
  UNET_CONV_IN_PROBE,
  V_PREDICTION_KEYS,
  VAE_DIFFUSERS_MARKER,
  VAE_KEY,
  type ArchitectureId,
  type KeyLayout,
  type ModelVariant,
  type PredictionType,
  type SdxlDerivative,
} from "./architecture-signatures.js";

export interface ArchitectureHints {
  /** File name (with or without folder); used only to name SDXL derivatives. */
  readonly filename?: string;
  /** The file's `__metadata__`; used for prediction type and SDXL derivative names. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ArchitectureReport {
  readonly architecture: ArchitectureId;
  /** Label for manifests and tables: "SD1.5", "SDXL", "Pony", "Flux", ... */
  readonly label: string;
  readonly layout: KeyLayout;
  readonly variant: ModelVariant;
  readonly prediction: PredictionType;
  readonly derivative: SdxlDerivative | undefined;
  /** UNet cross-attention width, when the file has a UNet. */
  readonly contextDim: number | undefined;
  /** Human-readable reasons, e.g. `attn2.to_k context 2048`. */
  readonly evidence: readonly string[];
}

type Descriptor = Pick<TensorDescriptor, "name" | "shape">;

/**
 * Identifies a model from its tensor names and shapes (headers only). Filename and metadata
 * hints never change the architecture; they only name SDXL derivatives and prediction type.
 */
export function detectArchitecture(descriptors: readonly Descriptor[], hints: ArchitectureHints = {}): ArchitectureReport {
  const evidence: string[] = [];
  const names = descriptors.map((d) => d.name);
  const find = (pattern: RegExp): Descriptor | undefined => descriptors.find((d) => pattern.test(d.name));

  let architecture: ArchitectureId = "unknown";
  let contextDim: number | undefined;

  for (const sig of TRANSFORMER_SIGNATURES) {
    const hit = find(sig.probe);
    if (hit) {
      architecture = sig.architecture;
      evidence.push(`${hit.name} present`);
      break;
    }
  }
  if (architecture === "unknown") {
    const toK = find(UNET_CONTEXT_DIM_PROBE);
    if (toK && toK.shape.length === 2) {
      contextDim = toK.shape[1];
      const row = UNET_CONTEXT_DIMS.find((r) => r.contextDim === contextDim);
      if (row) {
        architecture = row.architecture;
        evidence.push(`attn2.to_k context ${contextDim}`);
      } else evidence.push(`attn2.to_k context ${contextDim} matches no known UNet`);
    }
  }
  if (architecture === "unknown") {
    for (const sig of TEXT_ENCODER_SIGNATURES) {
      const hit = find(sig.probe);
      if (hit && (sig.dim1 === undefined || hit.shape[1] === sig.dim1)) {
        architecture = sig.architecture;
        evidence.push(`${hit.name} present`);
        break;
      }
    }
  }

  let layout: KeyLayout = KEY_LAYOUTS.find((l) => l.allOf.every((p) => names.some((n) => p.test(n))))?.layout ?? "unknown";
  if (architecture === "unknown" && names.length > 0 && names.every((n) => VAE_KEY.test(n))) {
    architecture = "vae";
    layout = names.some((n) => VAE_DIFFUSERS_MARKER.test(n)) ? "vae-diffusers" : "vae-ldm";
    evidence.push("only autoencoder keys");
  }

  let variant: ModelVariant = "standard";
  const convIn = find(UNET_CONV_IN_PROBE);
  if (convIn && convIn.shape.length === 4) {
    const row = CONV_IN_VARIANTS.find((r) => r.channels === convIn.shape[1]);
    if (row) variant = row.variant;
    if (variant !== "standard") evidence.push(`conv_in has ${convIn.shape[1]} input channels`);
  }

  const prediction = detectPrediction(architecture, names, hints.metadata ?? {}, evidence);
  const derivative = architecture === "sdxl" ? detectDerivative(hints, evidence) : undefined;
  const label = derivative ?? ARCHITECTURE_LABELS[architecture];
  return { architecture, label, layout, variant, prediction, derivative, contextDim, evidence };
}

function detectPrediction(architecture: ArchitectureId, names: readonly string[], metadata: Readonly<Record<string, string>>, evidence: string[]): PredictionType {
  if (architecture === "flux" || architecture === "sd3") return "flow";
  const marker = V_PREDICTION_KEYS.find((k) => names.includes(k));
  if (marker) {
    evidence.push(`${marker} marker tensor`);
    return "v";
  }
  for (const row of PREDICTION_METADATA) {
    const value = metadata[row.field];
    if (value === undefined) continue;
    if (row.v.test(value)) {
      evidence.push(`metadata ${row.field}=${value}`);
      return "v";
    }
    if (row.epsilon?.test(value)) return "epsilon";
  }
  // SD1 and SDXL checkpoints without markers are epsilon models; SD2 ships both kinds with
  // identical keys (512-base vs 768-v), so without metadata it stays unknown.
  if (architecture === "sd1" || architecture === "sdxl" || architecture === "sdxl-refiner") return "epsilon";
  return "unknown";
}

function detectDerivative(hints: ArchitectureHints, evidence: string[]): SdxlDerivative | undefined {
  const sources: [string, string][] = [];
  if (hints.filename) sources.push(["filename", hints.filename.split(/[\\/]/).pop() ?? hints.filename]);
  for (const field of NAME_METADATA_FIELDS) {
    const value = hints.metadata?.[field];
    if (value) sources.push([`metadata ${field}`, value]);
  }
  for (const row of SDXL_DERIVATIVE_HINTS) {
    for (const [where, text] of sources) {
      if (row.pattern.test(text)) {
        evidence.push(`${where} names ${row.derivative}`);
        return row.derivative;
      }
    }
  }
  return undefined;
}
