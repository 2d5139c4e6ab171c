import { describe, expect, it } from "vitest";
import { KernelWorkerPool } from "./worker-pool.js";

describe("KernelWorkerPool", () => {
  it("runs jobs on shared memory and reports worker-side failures as KernelErrors", async () => {
    const pool = new KernelWorkerPool(2);
    const a = new Float32Array(new SharedArrayBuffer(16 * 4)).fill(1.5);
    const out = new Float32Array(new SharedArrayBuffer(16 * 4));
    await Promise.all([pool.run(0, { op: "scale", arrays: [out, a], from: 0, to: 8, params: { s: 2 } }), pool.run(1, { op: "scale", arrays: [out, a], from: 8, to: 16, params: { s: 4 } })]);
    expect(Array.from(out)).toEqual([...new Array<number>(8).fill(3), ...new Array<number>(8).fill(6)]);
    expect(await pool.run(3, { op: "dot", arrays: [a, a], from: 0, to: 16, params: {} })).toBe(36);
    await expect(pool.run(0, { op: "noSuchOp", arrays: [], from: 0, to: 0, params: {} })).rejects.toMatchObject({ code: "KERNEL_FAILED", message: "kernel worker failed: unknown kernel op noSuchOp" });
    // The worker survives a failed job.
    expect(await pool.run(0, { op: "sumSquares", arrays: [a], from: 0, to: 2, params: {} })).toBe(4.5);
    await pool.close();
    await expect(pool.run(0, { op: "dot", arrays: [a, a], from: 0, to: 1, params: {} })).rejects.toMatchObject({ code: "KERNEL_CLOSED" });
  });

  it("runOnFree sends a job to a thread with nothing outstanding, holding it while every thread is busy", async () => {
    const pool = new KernelWorkerPool(2);
    try {
      const big = new Float32Array(new SharedArrayBuffer(4 * (1 << 24))).fill(1);
      const small = new Float32Array(new SharedArrayBuffer(64)).fill(2);
      // Both workers started and warm, so the small jobs' round trips are short.
      await Promise.all([0, 1].map((w) => pool.run(w, { op: "sumSquares", arrays: [small], from: 0, to: 16, params: {} })));
      const finished: string[] = [];
      const track = (name: string, job: Promise<unknown>) => job.then((value) => (finished.push(name), value));
      // Worker 0 is busy with four jobs of 16M elements each; A goes to worker 1, B waits here for
      // the first free thread, which is worker 1 again once A is done.
      const longs = [1, 2, 3, 4].map((k) => track(`long ${k}`, pool.run(0, { op: "sumSquares", arrays: [big], from: 0, to: big.length, params: {} })));
      const a = track("A", pool.runOnFree({ op: "sumSquares", arrays: [small], from: 0, to: 16, params: {} }));
      const b = track("B", pool.runOnFree({ op: "dot", arrays: [small, small], from: 0, to: 4, params: {} }));
      expect(await Promise.all([...longs, a, b])).toEqual([1 << 24, 1 << 24, 1 << 24, 1 << 24, 64, 16]);
      // Posted to worker 0, B would have finished after all four.
      expect(finished.indexOf("B")).toBeLessThan(finished.indexOf("long 4"));
      expect(finished.indexOf("A")).toBeLessThan(finished.indexOf("B"));
    } finally {
      await pool.close();
    }
  });

  it("close rejects the jobs waiting for a free thread", async () => {
    const pool = new KernelWorkerPool(1);
    const a = new Float32Array(new SharedArrayBuffer(4 * (1 << 22)));
    const running = pool.run(0, { op: "sumSquares", arrays: [a], from: 0, to: a.length, params: {} });
    const waiting = pool.runOnFree({ op: "sumSquares", arrays: [a], from: 0, to: 1, params: {} });
    const closing = pool.close();
    await expect(waiting).rejects.toMatchObject({ code: "KERNEL_CLOSED" });
    await expect(running).rejects.toMatchObject({ code: "KERNEL_WORKER_DIED" });
    await closing;
    await expect(pool.runOnFree({ op: "sumSquares", arrays: [a], from: 0, to: 1, params: {} })).rejects.toMatchObject({ code: "KERNEL_CLOSED" });
  });

  it("rejects outstanding jobs when a worker stops", async () => {
    const pool = new KernelWorkerPool(1);
    const a = new Float32Array(new SharedArrayBuffer(4 * (1 << 22)));
    const pending = pool.run(0, { op: "sumSquares", arrays: [a], from: 0, to: a.length, params: {} });
    const closing = pool.close();
    await expect(pending).rejects.toMatchObject({ code: "KERNEL_WORKER_DIED" });
    await closing;
  });
});
