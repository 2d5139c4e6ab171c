import { describe, expect, it } from "vitest";
import { fileFraction, formatBatchLine, formatPlainBatchLine, type BatchLine } from "./batch-view.js";
import { createTheme, PLAIN_THEME, visibleLength } from "./theme.js";

const UNICODE = createTheme({ color: false, unicode: true });
const line = (over: Partial<BatchLine> = {}): BatchLine => ({ index: 7, total: 120, name: "models/sub/a_fairly_long_model_name_v2.ckpt", sizeBytes: 6_500_000_000, format: "sd-checkpoint", fraction: 1, status: "converted", elapsedMs: 45_000, ...over });

describe("formatBatchLine", () => {
  it("the roadmap's line: counter, name, kind and size, bar, percentage, outcome and time", () => {
    expect(formatBatchLine(line({ name: "model1.ckpt" }), { columns: 100, theme: UNICODE })).toBe(`[  7/120] model1.ckpt (SD Model, 6.50 GB) ${"█".repeat(24)} 100% ✔ 45.0 s`);
    expect(formatBatchLine(line({ name: "corrupted.ckpt", format: undefined, fraction: 0, status: "failed" }), { columns: 100, theme: UNICODE })).toBe(`[  7/120] corrupted.ckpt (6.50 GB) ${"░".repeat(24)}   0% ✖ Error`);
  });

  it("never wider than the terminal: the name is shortened from the left, then the bar shrinks", () => {
    for (const columns of [50, 60, 80, 120]) {
      for (const status of ["running", "converted", "failed", "skipped"] as const) {
        expect(visibleLength(formatBatchLine(line({ status, fraction: 0.5 }), { columns, theme: UNICODE }))).toBeLessThanOrEqual(columns - 1);
      }
    }
    expect(formatBatchLine(line(), { columns: 60, theme: UNICODE })).toMatch(/^\[  7\/120\] …\S*v2\.ckpt \(SD Model, 6\.50 GB\) █+ 100% ✔ 45\.0 s$/);
  });

  it("control characters in a file name are shown escaped", () => {
    expect(formatBatchLine(line({ name: "evil\x1b[2J.ckpt" }), { columns: 120, theme: PLAIN_THEME })).not.toMatch(/\x1b/);
    expect(formatPlainBatchLine({ file: { input: "/m/x\r.pt", relative: "x\r.pt", output: "/o/x.safetensors", sizeBytes: 10 }, index: 1, status: "failed", format: undefined, sizeBefore: 10, sizeAfter: 0, ms: 3, error: { code: "E", message: "/m/x\r.pt: bad\x07", detail: "" } }, 2)).toBe("[1/2] x\\r.pt (10 B) failed: bad\\x07");
  });
});

describe("fileFraction", () => {
  it("convert is the first half, the read-back check the second; the source hash does not move it; never backwards", () => {
    expect(fileFraction({ phase: "convert", bytesDone: 50, bytesTotal: 100 }, 0)).toBe(0.25);
    expect(fileFraction({ phase: "hash", bytesDone: 100, bytesTotal: 100 }, 0.25)).toBe(0.25);
    expect(fileFraction({ phase: "verify", bytesDone: 100, bytesTotal: 100 }, 0.5)).toBe(1);
    expect(fileFraction({ phase: "convert", bytesDone: 10, bytesTotal: 100 }, 0.6)).toBe(0.6);
  });
});
