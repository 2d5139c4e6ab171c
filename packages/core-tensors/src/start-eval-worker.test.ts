import { afterEach, describe, expect, it } from "vitest";
import { startEvalWorker } from "./start-eval-worker.js";

// CommonJS on purpose: `require` exists only if the worker is not turned into an ES module.
const DOUBLER = `const { parentPort, workerData } = require("node:worker_threads"); parentPort.postMessage(workerData * 2);`;

function firstMessage(source: string, workerData: unknown): Promise<unknown> {
  const worker = startEvalWorker(source, { workerData });
  return new Promise((resolve, reject) => {
    worker.once("message", (m) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once("error", reject);
  });
}

describe("startEvalWorker", () => {
  const original = process.execArgv;
  afterEach(() => {
    process.execArgv = original;
  });

  it("runs CommonJS source text with its workerData", async () => {
    expect(await firstMessage(DOUBLER, 21)).toBe(42);
  });

  it("drops the parent's --input-type so the source stays CommonJS", async () => {
    process.execArgv = [...original, "--input-type=module"];
    expect(await firstMessage(DOUBLER, 5)).toBe(10);
    process.execArgv = [...original, "--input-type", "module"];
    expect(await firstMessage(DOUBLER, 7)).toBe(14);
  });

  it("starts under Node flags a worker refuses (node --max-old-space-size=… stmerge.js), keeping those it accepts", async () => {
    process.execArgv = [...original, "--max-old-space-size=4096", "--no-warnings", "--stack-size=900"];
    expect(await firstMessage(DOUBLER, 4)).toBe(8);
    const worker = startEvalWorker(`require("node:worker_threads").parentPort.postMessage(process.execArgv);`);
    const argv = await new Promise<unknown>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    await worker.terminate();
    expect(argv).toContain("--no-warnings");
    expect(argv).not.toContain("--max-old-space-size=4096");
  });
});
