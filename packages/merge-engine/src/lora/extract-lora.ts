import {
  decodeToF32,
  encodeFromF32,
  isFloatDType,
  openSafetensors,
  PRECISION_DTYPE,
  randomizedSvd,
  shapeElementCount,
  writeSafetensors,
  type DType,
  type InMemoryTensor,
  type KernelBackend,
  type Precision,
  type ProgressCallback,
  type TensorDescriptor,
  type TensorSource,
  type TruncatedSvd,
} from "@stmerge/core-tensors";
import { basename } from "node:path";
import { detectArchitecture } from "../models/detect-architecture.js";
import { MergeError } from "../merge-error.js";
import { buildLoraKeyMap, ldmUnetPathToDiffusers, type LoraTarget } from "./lora-key-map.js";

/** A module to extract: its LoRA name and where its weight lives in the checkpoints. */
export interface ExtractTarget {
  readonly name: string;
  readonly target: LoraTarget;
  /** Weight shape of the module ([out, in] or [out, in, kh, kw]). */
  readonly shape: readonly number[];
  readonly conv: boolean;
}

const UNET = /^(model\.diffusion_model\.|unet\.)/;
/** UNet modules kohya's LoRA targets (Transformer2D), and those LoCon adds with a conv rank (ResNet, down/upsamplers). */
const UNET_LINEAR = /(transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2))|\.proj_in|\.proj_out)\.weight$/;
const UNET_CONV = /(in_layers\.2|out_layers\.3|skip_connection|emb_layers\.1|\.op|\.conv)\.weight$/;
const TE_MODULE = /_(self_attn_(q|k|v|out)_proj|mlp_fc[12])$/;

/**
 * The modules a LoRA extracted from this checkpoint covers, named as trainers name them (SD1/SD2
 * UNet with diffusers names as sd-scripts writes them, SDXL with LDM names; text encoders as
 * `lora_te*_…`, OpenCLIP q/k/v as rows of `in_proj_weight`).
 */
export function extractTargets(descriptors: readonly TensorDescriptor[]): ExtractTarget[] {
  const arch = detectArchitecture(descriptors).architecture;
  const diffusersNames = arch === "sd1" || arch === "sd2";
  const byKey = new Map(descriptors.map((d) => [d.name, d]));
  const out: ExtractTarget[] = [];
  const seen = new Set<string>();
  for (const [name, target] of buildLoraKeyMap(descriptors)) {
    const d = byKey.get(target.key)!;
    if (!isFloatDType(d.dtype) || seen.has(`${target.key}:${target.rows?.start ?? ""}`)) continue;
    let ok = false;
    if (UNET.test(target.key)) {
      const path = target.key.replace(UNET, "").slice(0, -".weight".length);
      const wanted = `lora_unet_${(diffusersNames ? (ldmUnetPathToDiffusers(path) ?? path) : path).replace(/\./g, "_")}`;
      ok = name === wanted && (UNET_LINEAR.test(target.key) || (d.shape.length === 4 && UNET_CONV.test(target.key)));
    } else if (name.startsWith("lora_te")) {
      ok = TE_MODULE.test(name);
    }
    if (!ok) continue;
    seen.add(`${target.key}:${target.rows?.start ?? ""}`);
    const shape = target.rows ? [target.rows.count, d.shape[1]!] : d.shape;
    const conv = shape.length === 4 && (shape[2] !== 1 || shape[3] !== 1);
    out.push({ name, target, shape, conv });
  }
  return out;
}

export interface ExtractLoraOptions {
  readonly outputPath: string;
  readonly rank: number;
  /** Rank of k×k convolutions; without it they are left out (kohya's default). */
  readonly convRank?: number | undefined;
  readonly precision?: Precision;
  readonly overwrite?: boolean;
  readonly onProgress?: ProgressCallback | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * Runs each module's SVD on the backend's workers (`randomizedSvd`), up to `parallelism`
   * modules at once; without it (or a backend lacking the op) they run one by one on the
   * calling thread. The results are bit-identical either way.
   */
  readonly kernels?: KernelBackend | undefined;
}

export interface ExtractedModule {
  readonly name: string;
  readonly rank: number;
  /** ‖ΔW − up·down‖_F / ‖ΔW‖_F before the cast to the output precision. */
  readonly relativeError: number;
}

export interface ExtractLoraResult {
  readonly outputPath: string;
  readonly architecture: string;
  readonly modules: readonly ExtractedModule[];
  /** Modules whose weights are identical in both models (nothing to extract). */
  readonly unchanged: number;
  /** k×k convolutions left out because no conv rank was given. */
  readonly convSkipped: number;
}

/**
 * One module's ΔW at a time per SVD in flight: grow-only shared buffers, reused so memory stays at
 * (SVDs in flight) × (largest ΔW) instead of growing with lazily reclaimed SharedArrayBuffers.
 */
class DeltaSlots {
  readonly #buffers: (Float32Array | undefined)[];
  readonly #free: number[];
  readonly #busy = new Map<number, Promise<void>>();
  constructor(private readonly kernels: KernelBackend | undefined, count: number) {
    this.#buffers = new Array<Float32Array | undefined>(count).fill(undefined);
    this.#free = Array.from({ length: count }, (_, i) => count - 1 - i);
  }
  /** A free slot, waiting for a running SVD to finish when all are taken (its failure throws here). */
  async take(): Promise<number> {
    while (this.#free.length === 0) await Promise.race(this.#busy.values());
    return this.#free.pop()!;
  }
  buffer(slot: number, length: number): Float32Array {
    let b = this.#buffers[slot];
    if (!b || b.length < length) this.#buffers[slot] = b = this.kernels ? this.kernels.allocF32(length) : new Float32Array(length);
    return b.subarray(0, length);
  }
  /** Marks `slot` busy until `work` settles. */
  hold(slot: number, work: Promise<void>): void {
    const settled = work.finally(() => {
      this.#busy.delete(slot);
      this.#free.push(slot);
    });
    settled.catch(() => {}); // awaited through take() or drain(); not an unhandled rejection meanwhile
    this.#busy.set(slot, settled);
  }
  async drain(): Promise<void> {
    await Promise.all(this.#busy.values());
  }
}

/** kohya factors of one module from its SVD: up = U·diag(S), down = Vh, alpha = rank. */
function loraFactors(t: ExtractTarget, svd: TruncatedSvd, out: number, inner: number, energy: number, dtype: DType): { module: ExtractedModule; tensors: InMemoryTensor[] } {
  const r = svd.rank;
  const up = new Float32Array(out * r);
  for (let i = 0; i < out; i++) for (let c = 0; c < r; c++) up[i * r + c] = svd.u[i * r + c]! * svd.s[c]!;
  const down = Float32Array.from(svd.vh);
  const kept = svd.s.reduce((s, x) => s + x * x, 0);
  const four = t.shape.length === 4;
  return {
    module: { name: t.name, rank: r, relativeError: Math.sqrt(Math.max(energy - kept, 0) / energy) },
    tensors: [
      { name: `${t.name}.lora_down.weight`, dtype, shape: four ? [r, ...t.shape.slice(1)] : [r, inner], data: encodeFromF32(down, dtype) },
      { name: `${t.name}.lora_up.weight`, dtype, shape: four ? [out, r, 1, 1] : [out, r], data: encodeFromF32(up, dtype) },
      { name: `${t.name}.alpha`, dtype, shape: [], data: encodeFromF32(Float32Array.of(r), dtype) },
    ],
  };
}

async function readRows(source: TensorSource, t: ExtractTarget): Promise<Float32Array> {
  const d = source.get(t.target.key);
  if (!d) throw new MergeError("LORA_EXTRACT_KEY_MISSING", `${source.path}: has no ${t.target.key}`, { file: source.path });
  const all = decodeToF32(await source.read(t.target.key), d.dtype);
  if (!t.target.rows) return all;
  const cols = d.shape[1]!;
  return all.slice(t.target.rows.start * cols, (t.target.rows.start + t.target.rows.count) * cols);
}

/**
 * Extracts a LoRA as ΔW = tuned − base per module, truncated by randomized SVD to `rank`
 * (`convRank` for k×k convs): up = U·diag(S), down = Vh, alpha = rank (scale 1, kohya's
 * convention). With `kernels`, up to `parallelism` modules' SVDs run at once on the workers while
 * the next ΔW is read; the LoRA is written atomically at the end, modules in target order.
 */
export async function extractLora(tunedPath: string, basePath: string, options: ExtractLoraOptions): Promise<ExtractLoraResult> {
  for (const [flag, v] of [["rank", options.rank], ["conv rank", options.convRank]] as const) {
    if (v !== undefined && !(Number.isSafeInteger(v) && v > 0 && v <= 4096)) throw new MergeError("LORA_BAD_RANK", `${flag} must be an integer in 1..4096, got ${v}`);
  }
  const [tuned, base] = [await openSafetensors(tunedPath), await openSafetensors(basePath)];
  try {
    const targets = extractTargets(base.descriptors);
    if (targets.length === 0) throw new MergeError("LORA_EXTRACT_NO_MODULES", `${basePath}: no UNet or text-encoder modules a LoRA can target`, { file: basePath });
    const dtype = PRECISION_DTYPE[options.precision ?? "fp16"];
    const extracted: ({ module: ExtractedModule; tensors: InMemoryTensor[] } | undefined)[] = [];
    const svdOnWorkers = options.kernels?.randomizedSvd !== undefined;
    const slots = new DeltaSlots(svdOnWorkers ? options.kernels : undefined, svdOnWorkers ? Math.max(1, options.kernels!.parallelism) : 1);
    let unchanged = 0;
    let convSkipped = 0;
    for (const [index, t] of targets.entries()) {
      if (options.signal?.aborted) throw new MergeError("LORA_EXTRACT_ABORTED", `${options.outputPath}: extraction cancelled; no output written`, { file: options.outputPath });
      options.onProgress?.({ phase: "lora-extract", bytesDone: index, bytesTotal: targets.length, tensor: t.name, itemsDone: index, itemsTotal: targets.length });
      const rank = t.conv ? options.convRank : options.rank;
      if (rank === undefined) {
        convSkipped++;
        continue;
      }
      const td = tuned.get(t.target.key);
      if (!td || td.shape.join() !== base.get(t.target.key)!.shape.join()) {
        throw new MergeError("LORA_EXTRACT_SHAPES", `${tunedPath}: ${t.target.key} is ${td ? JSON.stringify(td.shape) : "missing"}, base has ${JSON.stringify(base.get(t.target.key)!.shape)}; the models are not the same architecture`, { file: tunedPath });
      }
      const tunedRows = await readRows(tuned, t);
      const b = await readRows(base, t);
      const slot = await slots.take();
      const delta = slots.buffer(slot, tunedRows.length);
      let energy = 0;
      for (let i = 0; i < delta.length; i++) {
        const v = tunedRows[i]! - b[i]!;
        delta[i] = v;
        energy += v * v;
      }
      if (energy === 0) {
        slots.hold(slot, Promise.resolve());
        unchanged++;
        continue;
      }
      const out = t.shape[0]!;
      const inner = shapeElementCount(t.shape) / out;
      const svd = svdOnWorkers ? options.kernels!.randomizedSvd!(delta, out, inner, rank, { seed: index }) : Promise.resolve(randomizedSvd(delta, out, inner, rank, { seed: index }));
      slots.hold(
        slot,
        svd.then((result) => {
          extracted[index] = loraFactors(t, result, out, inner, energy, dtype);
        }),
      );
    }
    await slots.drain();
    const modules = extracted.flatMap((e) => (e ? [e.module] : []));
    const tensors = extracted.flatMap((e) => e?.tensors ?? []);
    if (modules.length === 0) throw new MergeError("LORA_EXTRACT_IDENTICAL", `${tunedPath}: no targeted module differs from ${basename(basePath)}; nothing to extract`, { file: tunedPath });
    const architecture = detectArchitecture(base.descriptors).label;
    const metadata: Record<string, string> = {
      ss_network_module: "networks.lora",
      ss_network_dim: String(options.rank),
      ss_network_alpha: String(options.rank),
      ...(options.convRank ? { ss_network_args: JSON.stringify({ conv_dim: String(options.convRank), conv_alpha: String(options.convRank) }) } : {}),
      ss_base_model_version: architecture,
      stmerge_extracted_from: JSON.stringify({ tuned: basename(tunedPath), base: basename(basePath) }),
      ...(options.metadata ?? {}),
    };
    await writeSafetensors(options.outputPath, tensors, metadata, { overwrite: options.overwrite ?? false });
    return { outputPath: options.outputPath, architecture, modules, unchanged, convSkipped };
  } finally {
    await Promise.all([tuned.close(), base.close()]);
  }
}
