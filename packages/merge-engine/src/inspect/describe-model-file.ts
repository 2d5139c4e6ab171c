import { decodeToF32, openSafetensors, shapeElementCount, type DType } from "@stmerge/core-tensors";
import { detectFileFormat } from "../convert/detect-file-format.js";
import { describeLora, type LoraSummary } from "../lora/describe-lora.js";
import { looksLikeLora } from "../lora/lora-formats.js";
import { detectArchitecture } from "../models/detect-architecture.js";

/** What a safetensors file holds, as `stmerge inspect` reports it (the CLI only renders it). */
export interface ModelFileDescription {
  readonly file: string;
  readonly fileSize: number;
  readonly headerBytes: number;
  readonly tensorCount: number;
  readonly parameterCount: number;
  /** Tensors per dtype. */
  readonly dtypes: Record<string, number>;
  readonly metadata: Record<string, string>;
  /** Tensor names in code-unit order, at most `keyLimit` of them. */
  readonly keys: { name: string; dtype: DType; shape: readonly number[] }[];
  /** Present when the file is a LoRA/LyCORIS file. */
  readonly lora?: LoraSummary | undefined;
  /** What the file is (checkpoint, LoRA, VAE, embedding, …), from keys and shapes. */
  readonly kind: string;
  /** For models, the detected architecture with the evidence for it. */
  readonly architecture: { readonly id: string; readonly label: string; readonly variant: string; readonly prediction: string; readonly evidence: readonly string[] };
}

export interface DescribeModelFileOptions {
  /** How many tensor names to list (default: all). */
  readonly keyLimit?: number;
}

/** Alpha scalars of a LoRA (one element each); only LoRA files are read beyond their header. */
const MAX_ALPHA_READS = 10_000;

/**
 * Describes a safetensors file from its header (and, for a LoRA, its alpha scalars). A file of
 * another kind (a checkpoint, a saved web page) is refused with core-tensors' sniffer naming
 * what it looks like.
 */
export async function describeModelFile(path: string, options: DescribeModelFileOptions = {}): Promise<ModelFileDescription> {
  const source = await openSafetensors(path);
  try {
    const dtypes: Record<string, number> = {};
    let parameterCount = 0;
    for (const d of source.descriptors) {
      dtypes[d.dtype] = (dtypes[d.dtype] ?? 0) + 1;
      parameterCount += shapeElementCount(d.shape);
    }
    let lora: LoraSummary | undefined;
    if (looksLikeLora(source.descriptors)) {
      const alphas = new Map<string, number>();
      for (const d of source.descriptors.filter((x) => x.name.endsWith(".alpha") && shapeElementCount(x.shape) === 1).slice(0, MAX_ALPHA_READS)) {
        alphas.set(d.name, decodeToF32(await source.read(d.name), d.dtype)[0]!);
      }
      lora = describeLora(source.descriptors, alphas);
    }
    const { architecture, label, variant, prediction, evidence } = detectArchitecture(source.descriptors, { filename: path, metadata: source.metadata });
    return {
      file: path,
      fileSize: source.fileSize,
      headerBytes: source.header.headerLength,
      tensorCount: source.descriptors.length,
      parameterCount,
      dtypes,
      metadata: { ...source.metadata },
      keys: [...source.descriptors]
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .slice(0, options.keyLimit ?? Number.POSITIVE_INFINITY)
        .map((d) => ({ name: d.name, dtype: d.dtype, shape: d.shape })),
      lora,
      kind: detectFileFormat(source.descriptors).kind,
      architecture: { id: architecture, label, variant, prediction, evidence },
    };
  } finally {
    await source.close();
  }
}
