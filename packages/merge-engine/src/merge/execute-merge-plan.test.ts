import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend, createSafetensorsWriter, DIRECT_ALIGNMENT, type KernelBackend, openSafetensors, type TensorSource } from "@stmerge/core-tensors";
import { z } from "zod";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { tempDir, writeTinyModel } from "@stmerge/test-utils";
import { defineMergeMethod } from "../methods/merge-method.js";
import { loadMergeMethodPlugin } from "../methods/load-method-plugin.js";
import { slerp } from "../methods/slerp.js";
import { weightedSum } from "../methods/weighted-sum.js";
import { buildMergePlan } from "./build-merge-plan.js";
import { executeMergePlan } from "./execute-merge-plan.js";
import { MERGE_BUFFER_SETS, MERGE_OUTPUT_BUFFERS } from "./merge-plan.js";

const kernels = createCpuKernelBackend({ workers: 0 });
afterAll(() => kernels.close());
/** Sources `fixture` opened, closed after each test (closing twice is harmless). */
const opened: TensorSource[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

/** Two tiny models in a temp folder, `extra` tensors only in the first (which a merge copies from it). */
async function fixture(extra: { name: string; shape: number[] }[] = []) {
  const dir = tempDir();
  const paths = [await writeTinyModel(join(dir, "a.safetensors"), { seed: 1, extra }), await writeTinyModel(join(dir, "b.safetensors"), { seed: 2 })];
  const sources = await Promise.all(paths.map((p) => openSafetensors(p)));
  opened.push(...sources);
  const inputs = sources.map((s, i) => ({ name: `m${i}`, path: s.path, descriptors: s.descriptors, metadata: s.metadata, weight: 0.5 }));
  return { dir, sources: sources as TensorSource[], inputs };
}

/** The sources, each read counted per tensor (how many readRange calls). */
function countingReads(sources: readonly TensorSource[]): { sources: TensorSource[]; reads: Map<string, number> } {
  const reads = new Map<string, number>();
  const counted = sources.map(
    (s): TensorSource => ({
      path: s.path,
      descriptors: s.descriptors,
      metadata: s.metadata,
      get: (key) => s.get(key),
      read: (key, into) => s.read(key, into),
      readRange: (key, from, to, into) => {
        reads.set(key, (reads.get(key) ?? 0) + 1);
        return s.readRange(key, from, to, into);
      },
      close: async () => undefined,
    }),
  );
  return { sources: counted, reads };
}

const extraTensors = (count: number, size: number) => Array.from({ length: count }, (_, i) => ({ name: `model.diffusion_model.extra_${i}.weight`, shape: [size + i] }));

describe("executeMergePlan errors", () => {
  it("MERGE_SOURCES_MISMATCH when sources do not match the plan", async () => {
    const { dir, sources, inputs } = await fixture();
    const plan = buildMergePlan(inputs, { method: weightedSum });
    await expect(executeMergePlan(plan, { sources: sources.slice(0, 1), sink: createSafetensorsWriter(join(dir, "o.safetensors")), kernels, method: weightedSum })).rejects.toMatchObject({ code: "MERGE_SOURCES_MISMATCH" });
  });

  it("MERGE_PLAN_METHOD_MISMATCH when the executor is given another method than the plan's", async () => {
    const { dir, sources, inputs } = await fixture();
    const plan = buildMergePlan(inputs, { method: weightedSum });
    const other = defineMergeMethod({ ...weightedSum, name: "other_sum" });
    await expect(executeMergePlan(plan, { sources, sink: createSafetensorsWriter(join(dir, "o.safetensors")), kernels, method: other })).rejects.toMatchObject({ code: "MERGE_PLAN_METHOD_MISMATCH" });
  });

  it("MERGE_ABORTED on a cancelled signal, leaving no output", async () => {
    const { dir, sources, inputs } = await fixture();
    const plan = buildMergePlan(inputs, { method: weightedSum });
    const controller = new AbortController();
    controller.abort();
    await expect(executeMergePlan(plan, { sources, sink: createSafetensorsWriter(join(dir, "o.safetensors")), kernels, method: weightedSum, signal: controller.signal })).rejects.toMatchObject({ code: "MERGE_ABORTED" });
    await expect(openSafetensors(join(dir, "o.safetensors"))).rejects.toMatchObject({ code: "FILE_NOT_FOUND" });
  });

  it("MERGE_METHOD_BAD_RESULT when a plugin returns the wrong length", async () => {
    const { dir, sources, inputs } = await fixture();
    const broken = defineMergeMethod({ name: "broken", description: "", params: z.object({}), arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true, merge: async () => new Float32Array(1) });
    const plan = buildMergePlan(inputs, { method: broken });
    await expect(executeMergePlan(plan, { sources, sink: createSafetensorsWriter(join(dir, "o.safetensors")), kernels, method: broken })).rejects.toMatchObject({ code: "MERGE_METHOD_BAD_RESULT" });
  });

  it("MERGE_VAE_SOURCE_MISSING when a plan bakes a VAE and none is given", async () => {
    const { dir, sources, inputs } = await fixture();
    const vae = [{ name: "decoder.conv_in.weight", dtype: "F16" as const, shape: [4, 4, 3, 3], byteLength: 288 }];
    const plan = buildMergePlan(inputs, { method: weightedSum, vae: { path: "vae.safetensors", descriptors: vae } });
    await expect(executeMergePlan(plan, { sources, sink: createSafetensorsWriter(join(dir, "o.safetensors")), kernels, method: weightedSum })).rejects.toMatchObject({ code: "MERGE_VAE_SOURCE_MISSING" });
  });
});

describe("loadMergeMethodPlugin errors", () => {
  it("MERGE_PLUGIN_NOT_FOUND and MERGE_PLUGIN_INVALID", async () => {
    const dir = tempDir();
    await expect(loadMergeMethodPlugin("./missing.mjs", dir)).rejects.toMatchObject({ code: "MERGE_PLUGIN_NOT_FOUND" });
    await expect(loadMergeMethodPlugin("no-such-stmerge-plugin-package", dir)).rejects.toMatchObject({ code: "MERGE_PLUGIN_NOT_FOUND" });
    writeFileSync(join(dir, "empty.mjs"), "export const x = 1;\n");
    await expect(loadMergeMethodPlugin("./empty.mjs", dir)).rejects.toMatchObject({ code: "MERGE_PLUGIN_INVALID" });
    writeFileSync(join(dir, "bad.mjs"), "export default { name: 'bad' };\n");
    await expect(loadMergeMethodPlugin("./bad.mjs", dir)).rejects.toMatchObject({ code: "MERGE_PLUGIN_INVALID", message: expect.stringContaining("merge") });
  });
});

describe("executeMergePlan read-ahead and write-behind", () => {
  it("a tensor passed through unchanged keeps its input buffer until its late write has read it", async () => {
    // Tensors only in model a are copied from the buffer they were read into; a sink that reads
    // each buffer late shows whether a read-ahead reused that buffer too early.
    const extra = extraTensors(8, 64);
    const { dir, sources, inputs } = await fixture(extra);
    try {
      const plan = buildMergePlan(inputs, { method: weightedSum });
      expect(plan.entries.filter((e) => e.action === "copy").length).toBeGreaterThanOrEqual(extra.length);
      const writer = createSafetensorsWriter(join(dir, "out.safetensors"));
      const lateSink: typeof writer = Object.assign(Object.create(writer) as typeof writer, {
        write: async (key: string, bytes: Uint8Array, offset?: number) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          return writer.write(key, bytes.slice(), offset);
        },
      });
      await executeMergePlan(plan, { sources, sink: lateSink, kernels, method: weightedSum });
      const out = await openSafetensors(join(dir, "out.safetensors"));
      try {
        for (const { name } of extra) expect(Buffer.from(await out.read(name)).equals(Buffer.from(await sources[0]!.read(name)))).toBe(true);
      } finally {
        await out.close();
        await Promise.all(sources.map((s) => s.close()));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("executeMergePlan's output buffers", () => {
  it("let more writes wait for the disk than there are buffer sets, never more than there are output buffers, and each result stays as computed until written", async () => {
    // Every key merged: a tensor passed through holds its set's inputs until written (see above),
    // which would stop the reads before the output buffers run out.
    const dir = tempDir();
    const drop = ["alphas_cumprod", "cond_stage_model.transformer.text_model.embeddings.position_ids", "cond_stage_model.transformer.text_model.logit_scale", "model_ema.decay"];
    const paths = await Promise.all([1, 2].map((seed) => writeTinyModel(join(dir, `m${seed}.safetensors`), { seed, drop, extra: extraTensors(16, 64) })));
    const sources: TensorSource[] = await Promise.all(paths.map((p) => openSafetensors(p)));
    const inputs = sources.map((s, i) => ({ name: `m${i}`, path: s.path, descriptors: s.descriptors, metadata: s.metadata, weight: 0.5 }));
    try {
      const plan = buildMergePlan(inputs, { method: weightedSum });
      expect(plan.entries.length).toBeGreaterThan(2 * MERGE_OUTPUT_BUFFERS);
      expect(plan.entries.every((e) => e.action === "merge")).toBe(true);
      const writer = createSafetensorsWriter(join(dir, "out.safetensors"));
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      let issued = 0;
      let waiting = 0;
      let mostWaiting = 0;
      const heldSink: typeof writer = Object.assign(Object.create(writer) as typeof writer, {
        write: async (key: string, bytes: Uint8Array, offset?: number) => {
          issued++;
          mostWaiting = Math.max(mostWaiting, ++waiting);
          await gate;
          waiting--;
          // The bytes as they are when the disk takes them: an output buffer reused too early shows here.
          return writer.write(key, bytes.slice(), offset);
        },
      });
      const run = executeMergePlan(plan, { sources, sink: heldSink, kernels, method: weightedSum });
      // No write completes: the executor runs until every output buffer waits for one.
      for (let seen = -1; seen !== issued; ) {
        seen = issued;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(issued).toBeGreaterThan(MERGE_BUFFER_SETS);
      expect(issued).toBeLessThanOrEqual(MERGE_OUTPUT_BUFFERS);
      open();
      await run;
      expect(mostWaiting).toBeLessThanOrEqual(MERGE_OUTPUT_BUFFERS);
      const reference = join(dir, "reference.safetensors");
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(reference), kernels, method: weightedSum });
      expect(readFileSync(join(dir, "out.safetensors")).equals(readFileSync(reference))).toBe(true);
    } finally {
      await Promise.all(sources.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("executeMergePlan lays its output out for direct writes", () => {
  it("puts each merged chunk and each tensor passed through where its address agrees with its file offset modulo DIRECT_ALIGNMENT; with direct writes forced, the file is the page cache's byte for byte", async () => {
    const { dir, sources, inputs } = await fixture(extraTensors(4, 3000));
    const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 64 });
    try {
      // Chunks of 1000 elements: a key's chunks start at offsets that are not on a block.
      const plan = buildMergePlan(inputs, { method: weightedSum, maxChunkElements: 1000 });
      expect(plan.entries.some((e) => e.action === "copy")).toBe(true);
      const writer = createSafetensorsWriter(join(dir, "direct.safetensors"), { directWrites: true });
      const misplaced: string[] = [];
      let writes = 0;
      const recording: typeof writer = Object.assign(Object.create(writer) as typeof writer, {
        write: (key: string, bytes: Uint8Array, offset = 0) => {
          const at = writer.fileOffsetOf(key, offset)!;
          writes++;
          if ((bytes.byteOffset - at) % DIRECT_ALIGNMENT !== 0) misplaced.push(`${key}@${offset}`);
          return writer.write(key, bytes, offset);
        },
      });
      await executeMergePlan(plan, { sources, sink: recording, kernels: pooled, method: weightedSum });
      expect(writes).toBeGreaterThan(plan.entries.length);
      expect(misplaced).toEqual([]);
      const reference = join(dir, "buffered.safetensors");
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(reference, { directWrites: false }), kernels: pooled, method: weightedSum });
      expect(readFileSync(join(dir, "direct.safetensors")).equals(readFileSync(reference))).toBe(true);
      await Promise.all(sources.map((s) => s.close()));
    } finally {
      await pooled.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("executeMergePlan computes several items at once", () => {
  /** weighted sum whose merge of `slowKey` takes a while and of `failKey` throws. */
  const delayed = (slowKey: string, failKey?: string) =>
    defineMergeMethod({
      ...weightedSum,
      name: "delayed_sum",
      mergeEncoded: undefined,
      async merge(ctx, tensors, params) {
        if (ctx.key === slowKey) await new Promise((resolve) => setTimeout(resolve, 40));
        if (ctx.key === failKey) throw new Error(`cannot merge ${ctx.key}`);
        return weightedSum.merge(ctx, tensors, params);
      },
    });

  it("writes results in item order, each to its own key, when a later item finishes first", async () => {
    const { dir, sources, inputs } = await fixture();
    try {
      const merged = buildMergePlan(inputs, { method: weightedSum }).entries.filter((e) => e.action === "merge");
      const method = delayed(merged[0]!.key);
      const plan = buildMergePlan(inputs, { method });
      const writer = createSafetensorsWriter(join(dir, "o.safetensors"));
      const order: string[] = [];
      const recording: typeof writer = Object.assign(Object.create(writer) as typeof writer, {
        write: (key: string, bytes: Uint8Array, offset?: number) => (order.push(key), writer.write(key, bytes, offset)),
      });
      await executeMergePlan(plan, { sources, sink: recording, kernels, method });
      expect(order).toEqual(plan.entries.map((e) => e.key));
      // The same bytes as the plain weighted sum.
      const reference = join(dir, "reference.safetensors");
      await executeMergePlan(buildMergePlan(inputs, { method: weightedSum }), { sources, sink: createSafetensorsWriter(reference), kernels, method: weightedSum });
      expect(readFileSync(join(dir, "o.safetensors")).equals(readFileSync(reference))).toBe(true);
    } finally {
      await Promise.all(sources.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("runs up to three items at once, but the chunks of one key one after another", async () => {
    const { dir, sources, inputs } = await fixture();
    try {
      const spans: { key: string; offset: number; start: number; end: number }[] = [];
      let running = 0;
      let most = 0;
      const timed = defineMergeMethod({
        ...weightedSum,
        name: "timed_sum",
        mergeEncoded: undefined,
        async merge(ctx, tensors, params) {
          const start = performance.now();
          most = Math.max(most, ++running);
          // First chunks slow, later ones quick: a later chunk started early would finish first.
          await new Promise((resolve) => setTimeout(resolve, ctx.offset === 0 ? 30 : 1));
          running--;
          spans.push({ key: ctx.key, offset: ctx.offset, start, end: performance.now() });
          return weightedSum.merge(ctx, tensors, params);
        },
      });
      const plan = buildMergePlan(inputs, { method: timed, maxChunkElements: 64 });
      expect(plan.entries.some((e) => e.action === "merge" && e.shape.reduce((a, b) => a * b, 1) > 64)).toBe(true);
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(join(dir, "o.safetensors")), kernels, method: timed });
      for (const key of new Set(spans.map((s) => s.key))) {
        const chunks = spans.filter((s) => s.key === key).sort((a, b) => a.offset - b.offset);
        for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.start, `${key} chunk ${i}`).toBeGreaterThanOrEqual(chunks[i - 1]!.end);
      }
      // Three at a time here; at least two however slowly this machine reads.
      expect(most).toBeGreaterThanOrEqual(2);
      expect(most).toBeLessThanOrEqual(3);
    } finally {
      await Promise.all(sources.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a failure while the item before it still computes rejects with that failure and leaves no output", async () => {
    const { dir, sources, inputs } = await fixture();
    try {
      const merged = buildMergePlan(inputs, { method: weightedSum }).entries.filter((e) => e.action === "merge");
      const method = delayed(merged[0]!.key, merged[1]!.key);
      const plan = buildMergePlan(inputs, { method });
      await expect(executeMergePlan(plan, { sources, sink: createSafetensorsWriter(join(dir, "o.safetensors")), kernels, method })).rejects.toThrow(`cannot merge ${merged[1]!.key}`);
      await expect(openSafetensors(join(dir, "o.safetensors"))).rejects.toMatchObject({ code: "FILE_NOT_FOUND" });
    } finally {
      await Promise.all(sources.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("executeMergePlan's statistics passes", () => {
  it("reads no chunk of a pass the method said it no longer needs, whichever pass that is", async () => {
    const { dir, sources, inputs } = await fixture();
    try {
      for (const lastPass of [0, 1, 2]) {
        const gathered: number[] = [];
        // Weighted sum behind three statistics passes, of which it needs passes 0…lastPass.
        const method = defineMergeMethod({
          ...weightedSum,
          name: "passes_sum",
          elementwise: false,
          mergeEncoded: undefined,
          statistics: {
            passes: 3,
            init: () => ({}),
            async gather(pass) {
              gathered.push(pass);
            },
            endPass: (pass) => pass >= lastPass,
          },
        });
        const plan = buildMergePlan(inputs, { method, maxChunkElements: 16 });
        const streamed = plan.entries.filter((e) => e.statisticsPasses === 3);
        const { sources: counted, reads } = countingReads(sources);
        await executeMergePlan(plan, { sources: counted, sink: createSafetensorsWriter(join(dir, `o${lastPass}.safetensors`)), kernels, method });
        let many = 0;
        for (const e of streamed) {
          const chunks = Math.ceil(e.shape.reduce((a, b) => a * b, 1) / e.chunkElements);
          const most = (lastPass + 2) * chunks * e.inputs.length;
          // Each needed statistics pass and the merge pass read every chunk of every input, once,
          // or take it from a buffer set that still holds it from the pass before; a key of at
          // least twice as many chunks as sets has each chunk's set read into again before the
          // next pass needs it (the chunks go in index order).
          if (chunks >= 2 * MERGE_BUFFER_SETS) {
            many++;
            expect(reads.get(e.sourceKey), `${e.key}, passes 0…${lastPass}`).toBe(most);
          } else expect(reads.get(e.sourceKey), `${e.key}, passes 0…${lastPass}`).toBeLessThanOrEqual(most);
        }
        expect(many).toBeGreaterThan(0);
        expect(Math.max(...gathered)).toBe(lastPass);
      }
    } finally {
      await Promise.all(sources.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with statistics in any chunk order, gathers each key's chunks ending with its first ones and merges those without reading them again; the same bytes as in index order, with later items loading while the merge reads them", async () => {
    const { dir, sources, inputs } = await fixture();
    const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 8 });
    const chunkCounts = new Set<number>();
    try {
      // Chunk sizes that split the fixture's 144-element key in 2, 3, 4, 5 and 9.
      for (const [passes, maxChunkElements] of [1, 2].flatMap((p) => [72, 48, 36, 29, 16].map((c) => [p, c] as const))) {
        const gathered = new Map<string, number[]>();
        // Weighted sum behind statistics passes that record where each chunk lies. Its merge reads
        // the inputs a few milliseconds late, while later items load (into sets whose inputs an
        // item took from there only once it is done).
        const recording = (anyChunkOrder: boolean) =>
          defineMergeMethod({
            ...weightedSum,
            name: "ordered_sum",
            elementwise: false,
            async mergeEncoded(ctx, encoded, params, outDtype, out) {
              // (Not on the fixture's largest key, of many chunks: a slow test for nothing more.)
              if (ctx.shape.reduce((x, y) => x * y, 1) <= 144) await new Promise((resolve) => setTimeout(resolve, 3));
              return weightedSum.mergeEncoded!(ctx, encoded, params, outDtype, out);
            },
            statistics: {
              passes,
              anyChunkOrder,
              init: () => ({}),
              async gather(pass, ctx) {
                if (anyChunkOrder) gathered.set(`${ctx.key} ${pass}`, [...(gathered.get(`${ctx.key} ${pass}`) ?? []), ctx.offset]);
              },
            },
          });
        const method = recording(true);
        const plan = buildMergePlan(inputs, { method, maxChunkElements });
        const streamed = plan.entries.filter((e) => e.statisticsPasses === passes);
        const { sources: counted, reads } = countingReads(sources);
        const out = join(dir, `any${passes}-${maxChunkElements}.safetensors`);
        const inOrder = join(dir, `ordered${passes}-${maxChunkElements}.safetensors`);
        await executeMergePlan(plan, { sources: counted, sink: createSafetensorsWriter(out), kernels: pooled, method });
        await executeMergePlan(buildMergePlan(inputs, { method: recording(false), maxChunkElements }), { sources, sink: createSafetensorsWriter(inOrder), kernels: pooled, method: recording(false) });
        expect(readFileSync(out).equals(readFileSync(inOrder))).toBe(true);
        for (const e of streamed) {
          const chunks = Math.ceil(e.shape.reduce((a, b) => a * b, 1) / e.chunkElements);
          chunkCounts.add(chunks);
          const inOrder = Array.from({ length: chunks }, (_, i) => i * e.chunkElements);
          // Pass 0: the full chunk before the last first, then the last, then the others from the
          // end; pass 1 in index order.
          const fromTheEnd = [chunks - 2, chunks - 1, ...Array.from({ length: chunks - 2 }, (_, i) => chunks - 3 - i)].map((c) => c * e.chunkElements);
          expect(gathered.get(`${e.key} 0`), `${e.key} pass 0`).toEqual(fromTheEnd);
          if (passes === 2) expect(gathered.get(`${e.key} 1`), `${e.key} pass 1`).toEqual(inOrder);
          // Pass 0 reads every chunk; pass 1 starts with the chunks pass 0 read last, as many as
          // there are sets, takes them from there and reads the others. The merge pass after
          // pass 0 does the same; after pass 1 (which ends with the last chunks) it takes those
          // that are still held.
          const held = Math.min(chunks, MERGE_BUFFER_SETS);
          const count = reads.get(e.sourceKey)! / e.inputs.length;
          if (passes === 1) expect(count, e.key).toBe(chunks + chunks - held);
          else {
            expect(count, e.key).toBeGreaterThanOrEqual(chunks + 2 * (chunks - held));
            expect(count, e.key).toBeLessThanOrEqual(chunks + (chunks - held) + (chunks <= MERGE_BUFFER_SETS ? 0 : chunks));
          }
        }
      }
      // Keys of 2 chunks up to more than twice as many as there are sets.
      expect([2, 3, 4, 5].every((c) => chunkCounts.has(c)) && Math.max(...chunkCounts) > 2 * MERGE_BUFFER_SETS).toBe(true);
    } finally {
      await pooled.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("executeMergePlan's failures while a later read waits for the item that failed to start", () => {
  it.each([
    ["the read of the chunk after one that took a held set's inputs", true, 1, 32],
    ["the first read of a statistics pass after the pass before", false, 2, 16],
  ])("a failure before an item computes lets %s go, and rejects with that failure", async (_what, anyChunkOrder, passes, failAt) => {
    const { dir, sources, inputs } = await fixture();
    try {
      // Chunks of 16 on the fixture's 144-element key: 9 chunks. The merge fails on one chunk
      // while the next item, which a read already scheduled may wait for, has not computed.
      const method = defineMergeMethod({
        ...weightedSum,
        name: "failing_after_passes",
        elementwise: false,
        mergeEncoded: undefined,
        async merge(ctx, tensors, params) {
          if (ctx.shape.reduce((x, y) => x * y, 1) === 144 && ctx.offset === failAt) throw new Error("chunk failed");
          return weightedSum.merge(ctx, tensors, params);
        },
        statistics: {
          passes,
          anyChunkOrder,
          init: () => ({}),
          async gather(pass, ctx) {
            if (!anyChunkOrder && pass === 0 && ctx.shape.reduce((x, y) => x * y, 1) === 144 && ctx.offset === 112) throw new Error("chunk failed");
          },
        },
      });
      const plan = buildMergePlan(inputs, { method, maxChunkElements: 16 });
      const out = join(dir, "failing.safetensors");
      const run = executeMergePlan(plan, { sources, sink: createSafetensorsWriter(out), kernels, method });
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error("the merge hung")), 5000));
      await expect(Promise.race([run, timeout])).rejects.toThrow("chunk failed");
      expect(() => readFileSync(out)).toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("executeMergePlan's buffers in the backend's kernel arena", () => {
  it("give the bytes of a run without one; slots that grow give their old block back, and the arena is released at the end, after a failure too", async () => {
    const { dir, sources, inputs } = await fixture();
    // Worker threads on these tiny tensors, so the kernels work on the arena's blocks in place.
    const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 64 });
    const events: string[] = [];
    const recording: KernelBackend = {
      ...pooled,
      createArena() {
        const arena = pooled.createArena!()!;
        events.push("create");
        return {
          allocBytes: (n) => (events.push("alloc"), arena.allocBytes(n)),
          allocF32: (n) => (events.push("alloc"), arena.allocF32(n)),
          free: (view) => (events.push("free"), arena.free(view)),
          release: () => (events.push("release"), arena.release()),
        };
      },
    };
    try {
      const plan = buildMergePlan(inputs, { method: slerp, maxChunkElements: 256 });
      const withArena = join(dir, "arena.safetensors");
      const without = join(dir, "plain.safetensors");
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(withArena), kernels: recording, method: slerp });
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(without), kernels: { ...pooled, createArena: undefined }, method: slerp });
      expect(readFileSync(withArena).equals(readFileSync(without))).toBe(true);
      expect(events[0]).toBe("create");
      expect(events).toContain("free");
      expect(events.filter((e) => e === "release")).toEqual(["release"]);
      expect(events.at(-1)).toBe("release");
      events.length = 0;
      const failing = defineMergeMethod({
        ...weightedSum,
        name: "failing_sum",
        mergeEncoded: undefined,
        merge: () => Promise.reject(new Error("no merge today")),
      });
      await expect(executeMergePlan(buildMergePlan(inputs, { method: failing }), { sources, sink: createSafetensorsWriter(join(dir, "fail.safetensors")), kernels: recording, method: failing })).rejects.toThrow("no merge today");
      expect(events.filter((e) => e === "release")).toEqual(["release"]);
    } finally {
      await pooled.close();
      await Promise.all(sources.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("methods with statistics on the fused encoded path", () => {
  // slerp's merge pass is a weighted sum with per-tensor weights: run through the fused kernel on
  // the encoded bytes, it must give the bits of its `merge` (decode, interpolate, encode).
  it.each([
    ["F16", undefined],
    ["BF16", undefined],
    ["F16", 64],
  ] as const)("slerp of %s models (chunks of %s elements) gives the bytes of decode + gather + merge + encode, through dotAndNormsEncoded and weightedSumEncoded", async (dtype, maxChunkElements) => {
    const dir = tempDir();
    const paths = [await writeTinyModel(join(dir, "a.safetensors"), { seed: 3, dtype }), await writeTinyModel(join(dir, "b.safetensors"), { seed: 4, dtype })];
    const sources = (await Promise.all(paths.map((p) => openSafetensors(p)))) as TensorSource[];
    const inputs = sources.map((s, i) => ({ name: `m${i}`, path: s.path, descriptors: s.descriptors, metadata: s.metadata, weight: 1 }));
    let fusedCalls = 0;
    let encodedGathers = 0;
    const counting = Object.create(kernels, {
      weightedSumEncoded: { value: (...args: Parameters<NonNullable<typeof kernels.weightedSumEncoded>>) => (fusedCalls++, kernels.weightedSumEncoded!(...args)) },
      dotAndNormsEncoded: { value: (...args: Parameters<NonNullable<typeof kernels.dotAndNormsEncoded>>) => (encodedGathers++, kernels.dotAndNormsEncoded!(...args)) },
    }) as typeof kernels;
    const unfused = defineMergeMethod({ ...slerp, mergeEncoded: undefined, statistics: { ...slerp.statistics!, gatherEncoded: undefined } });
    const run = async (method: typeof slerp, name: string) => {
      const plan = buildMergePlan(inputs, { method, params: { t: 0.3 }, ...(maxChunkElements ? { maxChunkElements } : {}) });
      if (maxChunkElements) expect(plan.entries.some((e) => e.statisticsPasses > 0)).toBe(true);
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(join(dir, name)), kernels: counting, method });
      return readFileSync(join(dir, name));
    };
    const reference = await run(unfused, "reference.safetensors");
    expect([fusedCalls, encodedGathers]).toEqual([0, 0]);
    const fused = await run(slerp, "fused.safetensors");
    expect(fusedCalls).toBeGreaterThan(0);
    expect(encodedGathers).toBeGreaterThan(0);
    expect(Buffer.compare(fused, reference)).toBe(0);
  });
});
