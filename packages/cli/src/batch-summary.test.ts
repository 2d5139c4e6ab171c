import type { BatchConvertSummary, BatchFileResult, FileFormatKind } from "@stmerge/merge-engine";
import { describe, expect, it } from "vitest";
import { batchSummaryJson, errorLogName, errorLogText, renderBatchSummary, totalsByFormat } from "./batch-summary.js";
import { PLAIN_THEME } from "./theme.js";

function result(i: number, status: BatchFileResult["status"], format?: FileFormatKind): BatchFileResult {
  const rel = `f${i}.ckpt`;
  return {
    file: { input: `/m/${rel}`, relative: rel, output: `/o/f${i}.safetensors`, sizeBytes: 1000 * i },
    index: i,
    status,
    format,
    sizeBefore: 1000 * i,
    sizeAfter: status === "converted" || status === "skipped" ? 500 * i : 0,
    ms: 10,
    ...(status === "failed" ? { error: { code: "BAD", message: `/m/${rel}: broken number ${i}`, detail: `Error: broken\n    at x (y.ts:1:1)` } } : {}),
  };
}

const summary = (results: BatchFileResult[], extra: Partial<BatchConvertSummary> = {}): BatchConvertSummary => ({ folder: "/m", outputDir: "/o", results, unsupported: [], ms: 1234, jobs: 2, ...extra });

describe("batch summary", () => {
  it("per kind: files that have their output, sizes before and after; failed files are not counted", () => {
    const totals = totalsByFormat([result(1, "converted", "lora"), result(2, "skipped", "lora"), result(3, "converted", "vae"), result(4, "failed"), result(5, "converted")]);
    expect(totals).toEqual([
      { format: "vae", name: "VAEs", count: 1, sizeBefore: 3000, sizeAfter: 1500 },
      { format: "lora", name: "LoRAs", count: 2, sizeBefore: 3000, sizeAfter: 1500 },
      { format: "unknown", name: "unknown", count: 1, sizeBefore: 5000, sizeAfter: 2500 },
    ]);
  });

  it("the panel lists at most 20 failures, each as name: reason without the path, and points to the log", () => {
    const results = Array.from({ length: 25 }, (_, i) => result(i + 1, i === 0 ? "converted" : "failed", i === 0 ? "vae" : undefined));
    const text = renderBatchSummary(summary(results), { theme: PLAIN_THEME, columns: 80, errorLog: "/o/conversion_errors_x.log" });
    expect(text).toMatch(/success +1\/25 files converted/);
    expect(text).toMatch(/failed +f2\.ckpt: broken number 2 /);
    expect(text).toContain("f21.ckpt: broken number 21");
    expect(text).not.toContain("f22.ckpt");
    expect(text).toContain("... and 4 more (see the error log)".replace("...", "…"));
    expect(text).toMatch(/error log +\/o\/conversion_errors_x\.log/);
  });

  it("the error log holds every failure with its code and stack; its name is the UTC time", () => {
    const at = new Date("2026-12-02T05:11:09.123Z");
    expect(errorLogName(at)).toBe("conversion_errors_20261202T051109Z.log");
    const log = errorLogText(summary([result(1, "converted", "vae"), result(2, "failed")]), at);
    expect(log).toContain("== f2.ckpt (/m/f2.ckpt, 2000 bytes)\ncode: BAD\nmessage: /m/f2.ckpt: broken number 2\nError: broken\n    at x (y.ts:1:1)");
    expect(log).toContain("1 file failed of 2");
  });

  it("--json summary: counts by status and the failures", () => {
    const doc = batchSummaryJson(summary([result(1, "converted", "vae"), result(2, "failed"), result(3, "not-attempted")], { stopped: { reason: "disk", message: "stopped after f2.ckpt: disk full" } }), undefined);
    expect(doc).toMatchObject({ type: "summary", total: 3, converted: 1, failed: 1, notAttempted: 1, failures: [{ input: "/m/f2.ckpt", code: "BAD" }], stopped: { reason: "disk" }, errorLog: null });
  });
});
