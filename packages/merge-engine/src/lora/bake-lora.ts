import {
  createSafetensorsWriter,
  decodeToF32,
  DIRECT_ALIGNMENT,
  dtypeSize,
  encodeFromF32,
  isFloatDType,
  openSafetensors,
  pageAlignedSharedBytes,
  PRECISION_DTYPE,
  shapeElementCount,
  type DType,
  type KernelBackend,
  type Precision,
  type ProgressCallback,
  type TensorDescriptor,
  type TensorSink,
  type TensorSource,
  viewLaidOutFor,
} from "@stmerge/core-tensors";
import { KernelScratch } from "../kernel-scratch.js";
import { blockMapFor, blockOfKey } from "../models/block-maps.js";
import { detectArchitecture } from "../models/detect-architecture.js";
import { MergeError } from "../merge-error.js";
import { applyDora, doraAxis, type DoraAxis } from "./apply-dora.js";
import { alphaScale, loraDelta, type LoraTensor } from "./lora-delta.js";
import type { LoraModule, LoraRole } from "./lora-formats.js";
import { buildLoraKeyMap, type LoraTarget } from "./lora-key-map.js";
import { loraTensorOf, type LoadedLora } from "./load-lora.js";

export interface LoraBakeInput {
  readonly lora: LoadedLora;
  /** The user's multiplier m in W′ = W + m·scale·ΔW. */
  readonly strength: number;
}

/** One module placed on one checkpoint tensor. */
export interface LoraPlacement {
  readonly input: number;
  readonly module: LoraModule;
  readonly target: LoraTarget;
}

export interface UnplacedModule {
  readonly lora: string;
  readonly module: string;
  readonly reason: string;
}

export interface LoraBakePlan {
  readonly checkpoint: string;
  readonly inputs: readonly LoraBakeInput[];
  /** Placements grouped by checkpoint key, in the LoRAs' order. */
  readonly byKey: ReadonlyMap<string, readonly LoraPlacement[]>;
  readonly unplaced: readonly UnplacedModule[];
  readonly architecture: string;
}

type ShapeOf = (role: LoraRole) => readonly number[] | undefined;

const rowsOf = (s: readonly number[]) => s[0] ?? 1;
const colsOf = (s: readonly number[]) => shapeElementCount(s) / Math.max(rowsOf(s), 1);

/** Element count of a module's ΔW from its tensor shapes alone (no arithmetic), or a reason it has none. */
export function loraDeltaElements(module: LoraModule, shapeOf: ShapeOf): number | string {
  const s = (role: LoraRole) => shapeOf(role) ?? [];
  switch (module.format) {
    case "full":
      return shapeElementCount(s("diff"));
    case "lora":
      if (colsOf(s("up")) !== rowsOf(s("down"))) return `up ${JSON.stringify(s("up"))} does not fit down ${JSON.stringify(s("down"))}`;
      return rowsOf(s("up")) * colsOf(s("down"));
    case "locon-tucker": {
      const mid = s("mid");
      return rowsOf(s("up")) * colsOf(s("down")) * shapeElementCount(mid.slice(2));
    }
    case "loha": {
      const t1 = shapeOf("hada_t1");
      if (t1) return colsOf(s("hada_w1_a")) * colsOf(s("hada_w1_b")) * shapeElementCount(t1.slice(2));
      return rowsOf(s("hada_w1_a")) * colsOf(s("hada_w1_b"));
    }
    case "lokr": {
      const w1 = shapeOf("lokr_w1") ?? [rowsOf(s("lokr_w1_a")), colsOf(s("lokr_w1_b"))];
      const t2 = shapeOf("lokr_t2");
      const w2 = shapeOf("lokr_w2") ?? (t2 ? [colsOf(s("lokr_w2_a")), colsOf(s("lokr_w2_b")), ...t2.slice(2)] : [rowsOf(s("lokr_w2_a")), colsOf(s("lokr_w2_b"))]);
      return shapeElementCount(w1) * shapeElementCount(w2);
    }
  }
}

/** A block label for reports: text encoders by their LoRA prefix, the UNet/transformer by the block map. */
function blockLabeller(descriptors: readonly TensorDescriptor[]): { architecture: string; blockOf: (key: string) => string } {
  const report = detectArchitecture(descriptors);
  const map = blockMapFor(report.architecture);
  const te: readonly [RegExp, string][] = [
    [/^conditioner\.embedders\.0\.|^te1\.|^text_encoders\.clip_l\./, "TE1"],
    [/^conditioner\.embedders\.1\.|^te2\./, "TE2"],
    [/^text_encoders\.t5xxl\./, "TE3"],
    [/^cond_stage_model\.|^te\./, "TE"],
  ];
  return { architecture: report.label, blockOf: (key) => te.find(([p]) => p.test(key))?.[1] ?? blockOfKey(map, key) };
}

/**
 * Places every module of every LoRA on the checkpoint's tensors through a name map built from the
 * checkpoint's own keys, checking that the delta's size fits the target (or its q/k/v rows).
 * Modules that fit nowhere are listed with the reason, never dropped silently.
 */
export function planLoraBake(checkpoint: Pick<TensorSource, "path" | "descriptors">, inputs: readonly LoraBakeInput[]): LoraBakePlan {
  const keyMap = buildLoraKeyMap(checkpoint.descriptors);
  const byName = new Map(checkpoint.descriptors.map((d) => [d.name, d]));
  const byKey = new Map<string, LoraPlacement[]>();
  const unplaced: UnplacedModule[] = [];
  inputs.forEach(({ lora }, input) => {
    for (const u of lora.unrecognised) unplaced.push({ lora: lora.name, module: u.key, reason: u.reason });
    for (const module of lora.modules) {
      const target = keyMap.get(module.name);
      if (!target) {
        unplaced.push({ lora: lora.name, module: module.name, reason: "no matching tensor in the checkpoint" });
        continue;
      }
      const d = byName.get(target.key)!;
      if (!isFloatDType(d.dtype)) {
        unplaced.push({ lora: lora.name, module: module.name, reason: `target ${target.key} is ${d.dtype}, not a float tensor` });
        continue;
      }
      const elements = loraDeltaElements(module, (role) => loraTensorOf(lora, module, role)?.shape);
      const want = target.rows ? target.rows.count * colsOf(d.shape) : shapeElementCount(d.shape);
      if (typeof elements === "string" || elements !== want) {
        const why = typeof elements === "string" ? elements : `delta has ${elements} elements, target ${target.key}${target.rows ? ` rows ${target.rows.start}..${target.rows.start + target.rows.count - 1}` : ""} ${JSON.stringify(d.shape)} has ${want}`;
        unplaced.push({ lora: lora.name, module: module.name, reason: why });
        continue;
      }
      const magnitude = loraTensorOf(lora, module, "dora_scale");
      const axis = magnitude && doraAxis(magnitude.shape, target.rows?.count ?? rowsOf(d.shape), d.shape);
      if (axis !== undefined && axis !== "input" && axis !== "output") {
        unplaced.push({ lora: lora.name, module: module.name, reason: axis });
        continue;
      }
      let list = byKey.get(target.key);
      if (!list) byKey.set(target.key, (list = []));
      list.push({ input, module, target });
    }
  });
  return { checkpoint: checkpoint.path, inputs, byKey, unplaced, architecture: detectArchitecture(checkpoint.descriptors).label };
}

export interface BakeLoraOptions {
  readonly outputPath: string;
  readonly overwrite?: boolean;
  /** Output float precision; default: each tensor keeps its dtype. */
  readonly precision?: Precision | undefined;
  /** Bake what can be placed even when some modules cannot (default: refuse). */
  readonly allowUnmatched?: boolean;
  readonly onProgress?: ProgressCallback | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Extra output metadata (e.g. the tool version). */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly sink?: TensorSink;
  /** Kernel backend for the low-rank products (worker threads); without it they run inline. */
  readonly kernels?: KernelBackend | undefined;
}

export interface BakeLoraResult {
  readonly outputPath: string;
  readonly architecture: string;
  readonly tensorsWritten: number;
  readonly tensorsChanged: number;
  /** Per block: how many tensors changed. */
  readonly changedByBlock: Readonly<Record<string, number>>;
  readonly modulesPlaced: number;
  readonly unplaced: readonly UnplacedModule[];
  readonly bytesWritten: number;
  readonly loras: readonly { readonly name: string; readonly sha256: string; readonly strength: number; readonly modules: number; readonly formats: Readonly<Record<string, number>> }[];
}

/**
 * Untouched tensors are copied in pieces of this many bytes through COPY_BUFFERS buffers taken in
 * turn (the next piece is read while the one before is written). Page-aligned and laid out as in
 * the output, so the direct writes go from there with no staging copy; few and small, so their
 * pages stay in the TLB (core-tensors' README: streaming through 12 MiB of pages instead of 32
 * MiB or more).
 */
const COPY_PIECE_BYTES = 4 << 20;
const COPY_BUFFERS = 3;
/** Changed tensors computed at once (see executeLoraBake). */
const LANES = 2;

/**
 * Adds m·s·ΔW of each placement to `w` (F32, the whole target tensor), in the LoRAs' order. Plain
 * LoRA modules go to the kernel backend's row-split `addLowRankProduct` when it has one (same F32
 * arithmetic, on worker threads); other formats rebuild ΔW here.
 */
async function applyPlacements(w: Float32Array, shape: readonly number[], placements: readonly LoraPlacement[], inputs: readonly LoraBakeInput[], kernels: KernelBackend | undefined, scratch: KernelScratch<string> | undefined, lane: number): Promise<void> {
  const cols = colsOf(shape);
  for (const p of placements) {
    const { lora, strength } = inputs[p.input]!;
    const tensor = (role: LoraRole): LoraTensor | undefined => loraTensorOf(lora, p.module, role);
    const offset = p.target.rows ? p.target.rows.start * cols : 0;
    const magnitude = tensor("dora_scale");
    if (magnitude) {
      const rows = p.target.rows?.count ?? rowsOf(shape);
      const delta = loraDelta(p.module, tensor, lora.peft);
      applyDora(w, shape, p.target.rows?.start ?? 0, rows, delta.values, delta.scale, magnitude.values, doraAxis(magnitude.shape, rows, shape) as DoraAxis, strength);
      continue;
    }
    if (kernels?.addLowRankProduct && scratch && p.module.format === "lora") {
      const up = tensor("up")!;
      const down = tensor("down")!;
      const rank = rowsOf(down.shape);
      const factor = Math.fround(strength * alphaScale(tensor("alpha"), rank, lora.peft).scale);
      if (factor === 0) continue;
      const shared = (slot: string, t: LoraTensor) => {
        const a = scratch.floats(slot, t.values.length);
        a.set(t.values);
        return a;
      };
      await kernels.addLowRankProduct(w, shared(`up${lane}`, up), shared(`down${lane}`, down), { rows: rowsOf(up.shape), rank, cols: colsOf(down.shape), rowOffset: p.target.rows?.start ?? 0 }, factor);
      continue;
    }
    addScaledDelta(w, 0, { offset, ...scaledDelta(p, inputs) });
  }
}

/** One placement's ΔW with its factor m·s, at its element offset in the target tensor. */
export interface PlacedDelta {
  readonly offset: number;
  readonly factor: number;
  readonly values: Float32Array;
}

function scaledDelta(p: LoraPlacement, inputs: readonly LoraBakeInput[]): { factor: number; values: Float32Array } {
  const { lora, strength } = inputs[p.input]!;
  const delta = loraDelta(p.module, (role) => loraTensorOf(lora, p.module, role), lora.peft);
  return { factor: Math.fround(strength * delta.scale), values: delta.values };
}

/** The deltas of one target tensor's placements, in the LoRAs' order (for adding chunk by chunk). */
export function placedDeltas(shape: readonly number[], placements: readonly LoraPlacement[], inputs: readonly LoraBakeInput[]): PlacedDelta[] {
  const cols = colsOf(shape);
  return placements.map((p) => ({ offset: p.target.rows ? p.target.rows.start * cols : 0, ...scaledDelta(p, inputs) })).filter((d) => d.factor !== 0);
}

/** Adds factor·ΔW to `w`, which holds the target's elements from `start` on: W′ = W + m·s·ΔW in F32. */
export function addScaledDelta(w: Float32Array, start: number, d: PlacedDelta): void {
  const from = Math.max(d.offset, start);
  const to = Math.min(d.offset + d.values.length, start + w.length);
  const { factor, values } = d;
  if (factor === 0) return;
  for (let i = from; i < to; i++) w[i - start] = Math.fround(w[i - start]! + Math.fround(factor * values[i - d.offset]!));
}

/**
 * Refuses DoRA modules where the bake streams a tensor in chunks (a merge manifest's loras): the
 * magnitude normalisation needs the whole target tensor. `stmerge lora bake` handles them.
 */
export function refuseChunkedDora(plan: Pick<LoraBakePlan, "byKey" | "inputs">, file: string): void {
  for (const placements of plan.byKey.values()) {
    const dora = placements.find((p) => p.module.parts.dora_scale !== undefined);
    if (dora) {
      throw new MergeError("LORA_DORA_IN_MERGE", `${plan.inputs[dora.input]!.lora.name}: DoRA module ${dora.module.name} needs its whole target tensor and cannot be baked during a merge; merge first, then \`stmerge lora bake\` the result; nothing written`, { file });
    }
  }
}

/** Refuses a bake (or a merge with LoRAs) that would leave modules out; nothing has been read or written yet. */
export function refuseUnplaced(plan: Pick<LoraBakePlan, "unplaced">, file: string, hint: string): void {
  if (plan.unplaced.length === 0) return;
  const first = plan.unplaced.slice(0, 3).map((u) => `${u.module} (${u.reason})`).join(", ");
  throw new MergeError("LORA_UNPLACED", `${plan.unplaced[0]!.lora}: ${plan.unplaced.length} LoRA module(s) cannot be placed in ${file}: ${first}${plan.unplaced.length > 3 ? ", …" : ""}; nothing written${hint}`, {
    file,
    details: { unplaced: plan.unplaced },
  });
}

/**
 * Streams the checkpoint into the output: each tensor is read once, its LoRA deltas are added in
 * F32 (W′ = W + Σ mᵢ·sᵢ·ΔWᵢ) and cast back to its dtype (or `precision`), then written; untouched
 * tensors are copied in pieces. Memory: the LoRAs plus two target tensors in F32. Refuses before
 * writing anything when a module is unplaced, unless `allowUnmatched`.
 */
export async function executeLoraBake(plan: LoraBakePlan, source: TensorSource, options: BakeLoraOptions): Promise<BakeLoraResult> {
  if (!options.allowUnmatched) refuseUnplaced(plan, source.path, " (--allow-unmatched bakes the rest)");
  const outDtypeOf = (d: TensorDescriptor): DType => (options.precision && isFloatDType(d.dtype) ? PRECISION_DTYPE[options.precision] : d.dtype);
  const outDescriptors = source.descriptors.map((d) => {
    const dtype = outDtypeOf(d);
    return { name: d.name, dtype, shape: d.shape, byteLength: shapeElementCount(d.shape) * dtypeSize(dtype) };
  });
  const { blockOf } = blockLabeller(source.descriptors);
  const recorded = plan.inputs.map(({ lora, strength }) => ({ name: lora.name, sha256: lora.sha256, strength }));
  const metadata: Record<string, string> = { ...source.metadata, ...(options.metadata ?? {}), stmerge_loras: JSON.stringify(recorded) };
  const sink = options.sink ?? createSafetensorsWriter(options.outputPath, { overwrite: options.overwrite ?? false });
  const bytesTotal = outDescriptors.reduce((s, d) => s + d.byteLength, 0);
  const changedByBlock: Record<string, number> = {};
  let bytesDone = 0;
  let tensorsChanged = 0;
  let modulesPlaced = 0;
  await sink.begin(outDescriptors, metadata);
  // With kernels, each changed tensor is read, decoded, added to and encoded in scratch of its
  // lane (shared memory the kernels work on in place, reused: no fresh buffers to zero).
  const scratch = options.kernels ? new KernelScratch<string>(options.kernels) : undefined;
  const kernels = options.kernels;
  const aborted = (): MergeError => new MergeError("LORA_BAKE_ABORTED", `${options.outputPath}: bake cancelled; no output written`, { file: options.outputPath });
  const computeChanged = async (d: TensorDescriptor, placements: readonly LoraPlacement[], outDtype: DType, lane: number): Promise<Uint8Array> => {
    const n = shapeElementCount(d.shape);
    const bytes = await (scratch ? source.read(d.name, scratch.bytes(`in${lane}`, d.byteLength)) : source.read(d.name));
    if (options.signal?.aborted) throw aborted();
    const w = kernels && scratch ? await kernels.decode(bytes, d.dtype, scratch.floats(`w${lane}`, n)) : decodeToF32(bytes, d.dtype, new Float32Array(n));
    await applyPlacements(w, d.shape, placements, plan.inputs, kernels, scratch, lane);
    return kernels && scratch ? kernels.encode(w, outDtype, scratch.bytes(`out${lane}`, n * dtypeSize(outDtype))) : encodeFromF32(w, outDtype);
  };
  const copyBuffers: Uint8Array[] = [];
  const copyWrites: Promise<void>[] = [];
  let copies = 0;
  const copyUntouched = async (d: TensorDescriptor, outDtype: DType): Promise<void> => {
    const inSize = dtypeSize(d.dtype);
    const step = Math.max(1, Math.floor(COPY_PIECE_BYTES / inSize)) * inSize;
    for (let start = 0; start < d.byteLength || (start === 0 && d.byteLength === 0); start += step) {
      if (options.signal?.aborted) throw aborted();
      const end = Math.min(start + step, d.byteLength);
      const slot = copies++ % COPY_BUFFERS;
      // The buffer's last write is over before it is read into again.
      await copyWrites[slot];
      const buffer = (copyBuffers[slot] ??= pageAlignedSharedBytes(COPY_PIECE_BYTES + DIRECT_ALIGNMENT - 1));
      const offset = (start / inSize) * dtypeSize(outDtype);
      const bytes = await source.readRange(d.name, start, end, viewLaidOutFor(buffer, end - start, sink.fileOffsetOf?.(d.name, offset)));
      const out = outDtype === d.dtype ? bytes : encodeFromF32(decodeToF32(bytes, d.dtype), outDtype);
      const writing = sink.write(d.name, out, offset);
      writing.catch(() => undefined); // surfaced when awaited
      copyWrites[slot] = writing;
      if (d.byteLength === 0) break;
    }
  };
  // The output's writes, in file order: each changed tensor's once it is computed, the untouched
  // ones' copies between them. LANES changed tensors are computed at once (one's kernel calls run
  // while the other is read or between calls); a lane takes its next tensor once its last one is
  // written (its scratch is then free).
  let writes: Promise<void> = Promise.resolve();
  const laneWritten: Promise<void>[] = [];
  const computing: Promise<Uint8Array>[] = [];
  const written = (index: number): void => {
    bytesDone += outDescriptors[index]!.byteLength;
    options.onProgress?.({ phase: "lora-bake", bytesDone, bytesTotal, tensor: source.descriptors[index]!.name, tensorsDone: index + 1, tensorsTotal: source.descriptors.length });
  };
  try {
    for (const [index, d] of source.descriptors.entries()) {
      if (options.signal?.aborted) throw aborted();
      const outDtype = outDescriptors[index]!.dtype;
      const placements = plan.byKey.get(d.name);
      if (placements) {
        const lane = tensorsChanged % LANES;
        await laneWritten[lane];
        const computed = computeChanged(d, placements, outDtype, lane);
        computed.catch(() => undefined); // surfaced through `writes`
        computing[lane] = computed;
        writes = writes.then(async () => {
          await sink.write(d.name, await computed);
          written(index);
        });
        laneWritten[lane] = writes;
        tensorsChanged++;
        modulesPlaced += placements.length;
        const block = blockOf(d.name);
        changedByBlock[block] = (changedByBlock[block] ?? 0) + 1;
      } else {
        writes = writes.then(async () => {
          await copyUntouched(d, outDtype);
          written(index);
        });
      }
      writes.catch(() => undefined); // surfaced when awaited
    }
    await writes;
    await Promise.all(copyWrites);
    await sink.commit();
  } catch (error) {
    // Every read, kernel call and write settles before the scratch goes back (below).
    await Promise.allSettled([writes, ...computing, ...copyWrites]);
    await sink.abort();
    throw error;
  } finally {
    scratch?.release();
  }
  const loras = plan.inputs.map(({ lora, strength }) => {
    const formats: Record<string, number> = {};
    for (const m of lora.modules) formats[m.format] = (formats[m.format] ?? 0) + 1;
    return { name: lora.name, sha256: lora.sha256, strength, modules: lora.modules.length, formats };
  });
  return { outputPath: options.outputPath, architecture: plan.architecture, tensorsWritten: source.descriptors.length, tensorsChanged, changedByBlock, modulesPlaced, unplaced: plan.unplaced, bytesWritten: bytesDone, loras };
}

/** Opens the checkpoint, plans and bakes; the one call for library users. */
export async function bakeLoras(checkpointPath: string, inputs: readonly LoraBakeInput[], options: BakeLoraOptions & { readonly openSource?: (path: string) => Promise<TensorSource> }): Promise<BakeLoraResult> {
  const source = await (options.openSource ?? openSafetensors)(checkpointPath);
  try {
    return await executeLoraBake(planLoraBake(source, inputs), source, options);
  } finally {
    await source.close();
  }
}
