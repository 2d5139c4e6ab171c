import { DIRECT_ALIGNMENT, dtypeSize, shapeElementCount, viewLaidOutFor, type KernelBackend, type ProgressCallback, type TensorDescriptor, type TensorSink, type TensorSource } from "@stmerge/core-tensors";
import { addScaledDelta, placedDeltas, type LoraBakePlan, type PlacedDelta } from "../lora/bake-lora.js";
import { KernelScratch } from "../kernel-scratch.js";
import { MergeError } from "../merge-error.js";
import type { AnyMergeMethod } from "../methods/merge-method.js";
import { randomForKey, type SeededRandom } from "../methods/seeded-random.js";
import { gatheringOrder } from "./gathering-order.js";
import { MERGE_BUFFER_SETS, MERGE_OUTPUT_BUFFERS, planDescriptors, type MergePlan, type PlanEntry } from "./merge-plan.js";

export interface ExecuteMergeOptions {
  /** One open source per plan model, in plan order. */
  readonly sources: readonly TensorSource[];
  readonly vaeSource?: TensorSource | undefined;
  readonly sink: TensorSink;
  readonly kernels: KernelBackend;
  readonly method: AnyMergeMethod;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly onProgress?: ProgressCallback | undefined;
  readonly signal?: AbortSignal | undefined;
  /** LoRAs placed on the output's keys: their deltas are added to the merged F32 values before the cast. */
  readonly loras?: LoraBakePlan | undefined;
}

export interface ExecuteMergeResult {
  readonly bytesWritten: number;
  readonly tensorsWritten: number;
  /**
   * Milliseconds: where the main loop waited (waitRead, waitWrite) or computed, and how long reads
   * and writes were busy in all (readBusy, writeBusy; they overlap compute, and writes each other).
   */
  readonly timings: { readonly waitRead: number; readonly compute: number; readonly waitWrite: number; readonly readBusy: number; readonly writeBusy: number };
}

/**
 * The executor's scratch (KernelScratch): a set's slots are reused only after that set's previous
 * item has computed, and an output buffer only after its write, so a grown slot's old buffer has
 * no user left.
 */
class BufferPool extends KernelScratch<number> {
  /**
   * `bytes(slot, …)` laid out as the file will hold them: starting at an address that agrees with
   * `filePosition` modulo DIRECT_ALIGNMENT (the arena's memory starts on a page), so a direct
   * write takes them from where they are instead of copying them (core-tensors' DirectWrites).
   */
  bytesFor(slot: number, length: number, filePosition: number | undefined): Uint8Array {
    if (filePosition === undefined) return this.bytes(slot, length);
    return viewLaidOutFor(this.bytes(slot, length + DIRECT_ALIGNMENT - 1), length, filePosition);
  }
}

/** One unit of work: a chunk of one output tensor, in one of its passes. */
interface WorkItem {
  readonly entry: PlanEntry;
  readonly start: number;
  readonly length: number;
  /** True for the last chunk of its tensor in this pass (counts the tensor as done in the output pass). */
  readonly last: boolean;
  /** Statistics pass index, or undefined for the pass that writes the output. */
  readonly pass: number | undefined;
}

interface LoadedItem {
  readonly item: WorkItem;
  readonly inputs: readonly { readonly bytes: Uint8Array; readonly dtype: TensorDescriptor["dtype"] }[];
  /** The inputs are another set's (an earlier pass read the same chunk there): called once this item no longer needs them. */
  readonly giveBack?: () => void;
}

// Buffer sets (merge-plan's MERGE_BUFFER_SETS): while SETS − 1 items compute, the next one's reads
// are in flight. Encoded results go to output buffers of their own (MERGE_OUTPUT_BUFFERS), each
// reused once its write is done, so earlier writes may still be running.
const SETS = MERGE_BUFFER_SETS;
const OUTPUTS = MERGE_OUTPUT_BUFFERS;
const slot = (set: number, kind: "in" | "f32", index = 0) => set * 4096 + (kind === "in" ? 0 : 1024) + index;
const outputSlot = (output: number) => SETS * 4096 + output;

/**
 * The plan's items in order. `passesDone(entry)`: the method said the key needs no more
 * statistics passes; their items are then not made (the first of the pass after the one that
 * said so may already be, before it was known: it reads and gathers nothing).
 */
function* workItems(plan: MergePlan, anyChunkOrder: boolean, passesDone: (entry: PlanEntry) => boolean): Generator<WorkItem> {
  for (const entry of plan.entries) {
    const n = shapeElementCount(entry.shape);
    const chunk = entry.chunkElements;
    if (!(chunk >= 1)) throw new MergeError("MERGE_BAD_PLAN", `plan entry ${entry.key} has no chunk size`);
    const passes = entry.action === "merge" ? entry.statisticsPasses : 0;
    for (let pass = 0; pass <= passes; pass++) {
      const p = pass < passes ? pass : undefined;
      if (n === 0) yield { entry, start: 0, length: 0, last: true, pass: p };
      const order = gatheringOrder(Math.ceil(n / chunk), pass, p !== undefined && anyChunkOrder);
      for (const [i, c] of order.entries()) {
        if (p !== undefined && passesDone(entry)) break;
        yield { entry, start: c * chunk, length: Math.min(chunk, n - c * chunk), last: i === order.length - 1, pass: p };
      }
    }
  }
}

/** Statistics of one key being merged in several passes. */
interface KeyStatistics {
  readonly state: unknown;
  /** The method said the remaining passes are not needed. */
  done: boolean;
}

/**
 * Streams a plan: for each output key, reads the inputs' slices, runs the method on the kernel
 * backend, encodes and writes, reusing the same buffers for every key. Element-wise methods run
 * in chunks of `plan.chunkElements`, so working memory stays under the plan's budget whatever
 * the number of models; other methods hold one key's inputs at a time. Reads of the next chunk
 * and the write of the previous one overlap the compute of the current one. The sink's header
 * is written from the plan before any data; on any failure the sink is aborted and no output
 * appears.
 */
export async function executeMergePlan(plan: MergePlan, options: ExecuteMergeOptions): Promise<ExecuteMergeResult> {
  const { sources, sink, kernels, method } = options;
  if (plan.method !== method.name) throw new MergeError("MERGE_PLAN_METHOD_MISMATCH", `plan is for ${plan.method}, executor was given ${method.name}`);
  if (plan.entries.some((e) => e.statisticsPasses > 0) && !method.statistics) throw new MergeError("MERGE_BAD_PLAN", `plan has statistics passes but ${method.name} gathers no statistics`);
  if (sources.length !== plan.models.length) throw new MergeError("MERGE_SOURCES_MISMATCH", `plan has ${plan.models.length} models, ${sources.length} sources given`);
  const pool = new BufferPool(kernels);
  const bytesTotal = plan.outputBytes;
  const tensorsTotal = plan.entries.length;
  let bytesDone = 0;
  let tensorsDone = 0;
  const timings = { waitRead: 0, compute: 0, waitWrite: 0, readBusy: 0, writeBusy: 0 };

  // Per key being merged in several passes: what its statistics passes gathered.
  const statistics = new Map<string, KeyStatistics>();
  const sourceOf = (entry: PlanEntry, i: number): TensorSource => (entry.action === "vae" ? requireVae(options.vaeSource, plan) : sources[entry.inputs[i]!]!);
  // Per set: the statistics-pass chunk whose inputs its buffers hold, which a later pass of the
  // same key takes from there instead of reading it again; and, while such an item uses them,
  // when it is done (a read into that set waits for it).
  const held: (LoadedItem | undefined)[] = Array.from({ length: SETS }, () => undefined);
  const lent: Promise<void>[] = Array.from({ length: SETS }, () => Promise.resolve());
  const load = async (item: WorkItem, set: number): Promise<LoadedItem> => {
    const { entry } = item;
    // A statistics pass the method said it no longer needs (compute skips it): nothing to read.
    if (item.pass !== undefined && statistics.get(entry.key)?.done === true) return { item, inputs: [] };
    const lender = held.findIndex((h) => h !== undefined && h.item.entry === entry && h.item.start === item.start && h.item.length === item.length);
    if (lender >= 0) {
      let giveBack!: () => void;
      const done = new Promise<void>((resolve) => (giveBack = resolve));
      lent[lender] = Promise.all([lent[lender], done]).then(() => undefined);
      return { item, inputs: held[lender]!.inputs, giveBack };
    }
    held[set] = undefined;
    const count = entry.action === "merge" ? entry.inputs.length : 1;
    const started = performance.now();
    const inputs = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const source = sourceOf(entry, i);
        const d = source.get(entry.sourceKey);
        if (!d) throw new MergeError("MERGE_KEY_VANISHED", `${source.path}: tensor ${entry.sourceKey} is no longer in the file`, { file: source.path });
        const size = dtypeSize(d.dtype);
        // An inpainting first conv is read whole: the inputs differ in size (9 or 8 channels vs 4).
        const start = entry.channels ? 0 : item.start;
        const elements = entry.channels ? shapeElementCount(d.shape) : item.length;
        // A tensor copied as it is goes to the output from this buffer: laid out as it will be written.
        const passedThrough = entry.action !== "merge" && d.dtype === entry.outDtype;
        const into = pool.bytesFor(slot(set, "in", i), elements * size, passedThrough ? sink.fileOffsetOf?.(entry.key, start * size) : undefined);
        const bytes = await source.readRange(entry.sourceKey, start * size, (start + elements) * size, into);
        return { bytes, dtype: d.dtype };
      }),
    );
    timings.readBusy += performance.now() - started;
    const loaded = { item, inputs };
    // Statistics only read their inputs (MergeStatistics.gather), so a later pass may take them.
    if (item.pass !== undefined) held[set] = loaded;
    return loaded;
  };

  // ΔW of the key being written, computed at its first chunk and dropped after its last.
  const loraDeltas = new Map<string, PlacedDelta[]>();
  const addLoras = (item: WorkItem, w: Float32Array, start: number): Float32Array => {
    const placements = options.loras?.byKey.get(item.entry.key);
    if (!placements) return w;
    let deltas = loraDeltas.get(item.entry.key);
    if (!deltas) loraDeltas.set(item.entry.key, (deltas = placedDeltas(item.entry.shape, placements, options.loras!.inputs)));
    if (item.last) loraDeltas.delete(item.entry.key);
    for (const d of deltas) addScaledDelta(w, start, d);
    return w;
  };
  const hasLoras = (entry: PlanEntry) => options.loras?.byKey.has(entry.key) === true;

  const streams = new Map<string, Map<number, SeededRandom>>();
  const compute = async ({ item, inputs }: LoadedItem, set: number, output: number): Promise<Uint8Array | undefined> => {
    const { entry, length } = item;
    const outSize = dtypeSize(entry.outDtype);
    const outBytes = pool.bytesFor(outputSlot(output), length * outSize, sink.fileOffsetOf?.(entry.key, item.start * outSize));
    if (entry.action !== "merge") {
      const { bytes, dtype } = inputs[0]!;
      if (dtype === entry.outDtype && !hasLoras(entry)) return bytes;
      return kernels.encode(addLoras(item, await kernels.decode(bytes, dtype, pool.floats(slot(set, "f32"), length)), item.start), entry.outDtype, outBytes);
    }
    let keyStreams = streams.get(entry.key);
    if (!keyStreams) streams.set(entry.key, (keyStreams = new Map()));
    const random = (i: number) => {
      let r = keyStreams.get(i);
      if (!r) keyStreams.set(i, (r = randomForKey(plan.seed, entry.key, entry.inputs[i] ?? i)));
      return r;
    };
    const out = pool.floats(slot(set, "f32", 1023), length);
    const baseCtx = { kernels, key: entry.key, block: entry.block, shape: entry.shape, offset: item.start, weights: entry.weights, random, out };
    const stats = method.statistics;
    if (item.pass !== undefined) {
      // A statistics pass over this chunk: nothing is written.
      let keyStats = statistics.get(entry.key);
      if (!keyStats) statistics.set(entry.key, (keyStats = { state: stats!.init(baseCtx, entry.params), done: false }));
      if (keyStats.done) return undefined;
      if (!(await stats!.gatherEncoded?.(item.pass, baseCtx, inputs, entry.params, keyStats.state))) {
        const tensors = await Promise.all(inputs.map(({ bytes, dtype }, i) => kernels.decode(bytes, dtype, pool.floats(slot(set, "f32", i), length))));
        await stats!.gather(item.pass, baseCtx, tensors, entry.params, keyStats.state);
      }
      if (item.last && stats!.endPass?.(item.pass, keyStats.state, entry.params) === true) keyStats.done = true;
      return undefined;
    }
    // The whole key in memory: its statistics come from the buffers already read (the encoded
    // bytes when the method gathers from them, else `tensors()`, decoded once when first needed).
    const gatherInMemory = async (ctx: typeof baseCtx, tensors: () => Promise<Float32Array[]>, encoded?: typeof inputs): Promise<unknown> => {
      if (!stats) return undefined;
      const state = stats.init(ctx, entry.params);
      for (let pass = 0; pass < stats.passes; pass++) {
        if (!(encoded && (await stats.gatherEncoded?.(pass, ctx, encoded, entry.params, state)))) await stats.gather(pass, ctx, await tensors(), entry.params, state);
        if (stats.endPass?.(pass, state, entry.params) === true) break;
      }
      return state;
    };
    if (entry.channels) {
      // Inpainting / pix2pix first conv: the method runs on channels 0…merged−1 of model 0 and
      // the other inputs (which have only those); model 0's extra channels are kept.
      const { merged, total } = entry.channels;
      const [rows = 0, , h = 1, w = 1] = entry.shape;
      const hw = h * w;
      const narrow = rows * merged * hw;
      const full = await kernels.decode(inputs[0]!.bytes, inputs[0]!.dtype, pool.floats(slot(set, "f32", 1022), length));
      const tensors = await Promise.all(inputs.map(({ bytes, dtype }, i) => (i === 0 ? pool.floats(slot(set, "f32", 0), narrow) : kernels.decode(bytes, dtype, pool.floats(slot(set, "f32", i), narrow)))));
      for (let r = 0; r < rows; r++) tensors[0]!.set(full.subarray(r * total * hw, (r * total + merged) * hw), r * merged * hw);
      const ctx = { ...baseCtx, shape: [rows, merged, h, w], out: pool.floats(slot(set, "f32", 1023), narrow) };
      const state = await gatherInMemory(ctx, async () => tensors);
      const result = await method.merge(stats ? { ...ctx, statistics: state } : ctx, tensors, entry.params);
      if (result.length !== narrow) throw new MergeError("MERGE_METHOD_BAD_RESULT", `${method.name}: returned ${result.length} values for ${entry.key}, expected ${narrow}`);
      for (let r = 0; r < rows; r++) full.set(result.subarray(r * merged * hw, (r + 1) * merged * hw), r * total * hw);
      streams.delete(entry.key);
      return kernels.encode(addLoras(item, full, 0), entry.outDtype, outBytes);
    }
    const mergeEncoded = hasLoras(entry) ? undefined : method.mergeEncoded;
    if (mergeEncoded && !stats) {
      const fast = await mergeEncoded(baseCtx, inputs, entry.params, entry.outDtype, outBytes);
      if (fast) {
        if (item.last) streams.delete(entry.key);
        return fast;
      }
    }
    let decoded: Promise<Float32Array[]> | undefined;
    const decodeInputs = () => (decoded ??= Promise.all(inputs.map(({ bytes, dtype }, i) => kernels.decode(bytes, dtype, pool.floats(slot(set, "f32", i), length)))));
    // Statistics from earlier passes need no decoded inputs here; a key in memory gathers them now.
    const state = !stats ? undefined : entry.statisticsPasses > 0 ? statistics.get(entry.key)?.state : await gatherInMemory(baseCtx, decodeInputs, inputs);
    if (item.last) {
      statistics.delete(entry.key);
      streams.delete(entry.key);
    }
    const ctx = stats ? { ...baseCtx, statistics: state } : baseCtx;
    if (mergeEncoded && stats) {
      const fast = await mergeEncoded(ctx, inputs, entry.params, entry.outDtype, outBytes);
      if (fast) return fast;
    }
    const result = await method.merge(ctx, await decodeInputs(), entry.params);
    if (result.length !== length) throw new MergeError("MERGE_METHOD_BAD_RESULT", `${method.name}: returned ${result.length} values for ${entry.key}, expected ${length}`);
    return kernels.encode(addLoras(item, result, item.start), entry.outDtype, outBytes);
  };

  try {
    await sink.begin(planDescriptors(plan), options.metadata ?? {});
  } catch (error) {
    pool.release();
    throw error;
  }
  // Per output buffer: the write of the result last computed into it.
  const writes: Promise<void>[] = Array.from({ length: OUTPUTS }, () => Promise.resolve());
  // When a set's input buffers may be read into again: at once after compute, unless the write
  // in flight reads them (a tensor passed through unchanged), then when that write is done. So
  // the read-ahead of item i+1 no longer waits for the write-behind of item i-1.
  const inputsFree: Promise<void>[] = Array.from({ length: SETS }, () => Promise.resolve());
  let pendingLoad: Promise<LoadedItem> | undefined;
  // Items computing, oldest first (at most SETS − 1): item i starts computing while items i-1 and
  // i-2 still do, so the kernel threads are not idle while the main thread sets up the next step
  // of a method (TIES's histograms and merge pass depend on each other). Results are written in
  // item order.
  const computing: { loaded: LoadedItem; set: number; output: number; result: Promise<Uint8Array | undefined> }[] = [];
  /** Waits for the oldest item computing, writes its result and frees its input buffers. */
  const finishOldest = async (): Promise<void> => {
    const { loaded, set, output, result } = computing[0]!;
    const mark = performance.now();
    const encoded = await result;
    timings.compute += performance.now() - mark;
    computing.shift();
    inputsFree[set] = Promise.resolve();
    if (!encoded) return;
    const { entry, start, last } = loaded.item;
    const writeStarted = performance.now();
    writes[output] = sink.write(entry.key, encoded, start * dtypeSize(entry.outDtype)).then(() => {
      timings.writeBusy += performance.now() - writeStarted;
      bytesDone += encoded.byteLength;
      if (last) tensorsDone++;
      options.onProgress?.({ phase: "merge", bytesDone, bytesTotal, tensor: entry.key, detail: entry.block, tensorsDone, tensorsTotal });
    });
    writes[output]!.catch(() => undefined);
    if (loaded.inputs.some((input) => input.bytes.buffer === encoded.buffer)) inputsFree[set] = writes[output]!;
  };
  // What the read just scheduled may wait for from the item not yet computing (its compute, or
  // the inputs it took): released when that item computes, or by a failure before it does, so
  // the failure's wait for that read ends.
  let letGo: (() => void) | undefined;
  try {
    const items = workItems(plan, method.statistics?.anyChunkOrder === true, (entry) => statistics.get(entry.key)?.done === true);
    let next = items.next();
    let index = 0;
    if (!next.done) pendingLoad = load(next.value, 0);
    while (pendingLoad) {
      if (options.signal?.aborted) throw new MergeError("MERGE_ABORTED", `${sink.path}: merge cancelled; no output written`, { file: sink.path });
      const set = index % SETS;
      let mark = performance.now();
      const loaded = await pendingLoad;
      timings.waitRead += performance.now() - mark;
      next = items.next();
      const nextSet = (index + 1) % SETS;
      // The next item's input buffers: their last user (item index + 1 - SETS) has finished computing.
      // The first chunk of a key's next statistics pass also waits for this item (its previous
      // pass's last chunk) to compute: the method may then say it needs no more passes, and the
      // chunk is not read for nothing.
      const nextPass = !next.done && next.value.pass !== undefined && next.value.entry === loaded.item.entry && next.value.pass !== loaded.item.pass;
      let computed: (() => void) | undefined;
      // A set whose inputs an item took for its own (see `held`) is read into once that item is done.
      const ready = Promise.all([inputsFree[nextSet]!, lent[nextSet]!, ...(nextPass ? [new Promise<void>((resolve) => (computed = resolve))] : [])]);
      pendingLoad = next.done ? undefined : ready.then(() => load(next.value as WorkItem, nextSet));
      pendingLoad?.catch(() => undefined); // surfaced when awaited
      letGo = () => {
        computed?.();
        loaded.giveBack?.();
      };
      // Chunks and passes of one key run in order: its statistics and random streams continue across
      // them. Its items are consecutive, so finishing the oldest until none of them computes suffices.
      while (computing.some((c) => c.loaded.item.entry === loaded.item.entry)) await finishOldest();
      // The output buffer's last item finished computing long ago (at most SETS − 1 compute at
      // once, fewer than OUTPUTS); its write may still run.
      const output = index % OUTPUTS;
      mark = performance.now();
      await writes[output];
      timings.waitWrite += performance.now() - mark;
      const result = compute(loaded, set, output);
      result.catch(() => undefined); // surfaced by finishOldest
      const release = letGo;
      letGo = undefined;
      void result.finally(release).catch(() => undefined);
      computing.push({ loaded, set, output, result });
      // The oldest item finishes (and is written) while the later ones compute.
      if (computing.length > SETS - 2) await finishOldest();
      index++;
    }
    while (computing.length > 0) await finishOldest();
    const mark = performance.now();
    await Promise.all(writes);
    await sink.commit();
    timings.waitWrite += performance.now() - mark;
  } catch (error) {
    letGo?.();
    await pendingLoad?.catch(() => undefined);
    await Promise.allSettled(computing.map((c) => c.result));
    await Promise.allSettled(writes);
    await sink.abort();
    throw error;
  } finally {
    // Every read, compute and write is over by here.
    pool.release();
  }
  return { bytesWritten: bytesDone, tensorsWritten: tensorsDone, timings };
}

function requireVae(source: TensorSource | undefined, plan: MergePlan): TensorSource {
  if (!source) throw new MergeError("MERGE_VAE_SOURCE_MISSING", `plan bakes ${plan.vaePath ?? "a VAE"} but no VAE source was given`);
  return source;
}
