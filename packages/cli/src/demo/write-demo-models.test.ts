import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStateDict } from "@stmerge/merge-engine";
import { afterAll, describe, expect, it } from "vitest";
import { DEMO_CHECKPOINT_SHA256 } from "./demo-checkpoint.js";
import { sd1DemoLayout } from "./demo-layout.js";
import { writeDemoLegacyCheckpoint } from "./write-demo-models.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-demo-models-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the demo's legacy checkpoint", () => {
  it("is the file torch.save wrote, and holds the demo layout (the one its safetensors models use)", async () => {
    const legacy = await writeDemoLegacyCheckpoint(dir);
    const bytes = readFileSync(legacy.path);
    expect(legacy.bytes).toBe(bytes.byteLength);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(DEMO_CHECKPOINT_SHA256);
    // tools/fixtures/demo_checkpoint.py shrinks the shapes by the rule demo-layout.ts uses: every
    // tensor has the name, shape and dtype the demo's safetensors models give it (else merging
    // the converted checkpoint with them would fail).
    const opened = await openStateDict(legacy.path);
    try {
      const got = opened.source.descriptors.map((d) => [d.name, d.dtype, d.shape.join("x")]);
      expect(got).toEqual(sd1DemoLayout().map((s) => [s.name, s.dtype, s.shape.join("x")]));
      expect(opened.wrapperPath).toEqual(["state_dict"]);
    } finally {
      await opened.source.close();
    }
  });
});
