import { writeFile, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixture } from "../test/fixture-paths.js";
import { auditCheckpoint } from "./audit-checkpoint.js";

describe("auditCheckpoint", () => {
  it("a clean checkpoint lists only allowed globals", async () => {
    const report = await auditCheckpoint(fixture("sd_lightning.ckpt"));
    expect(report.status).toBe("clean");
    expect(report.format).toBe("torch-zip");
    const names = report.globals.map((g) => `${g.module}.${g.name}`);
    expect(names).toContain("torch._utils._rebuild_tensor_v2");
    expect(names).toContain("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint");
    expect(report.globals.every((g) => g.verdict === "allowed")).toBe(true);
    expect(report.globals.find((g) => g.name === "_rebuild_tensor_v2")!.occurrences[0]).toMatchObject({ record: "sd_lightning/data.pkl", opcode: "GLOBAL" });
  });

  it("a hostile checkpoint is unsafe, dangerous globals first", async () => {
    const report = await auditCheckpoint(fixture("hostile_in_state_dict.ckpt"));
    expect(report.status).toBe("unsafe");
    expect(report.globals[0]).toMatchObject({ module: "posix", name: "system", verdict: "dangerous" });
    expect(report.globals[0]!.occurrences[0]).toMatchObject({ record: "hostile_in_state_dict/data.pkl", opcode: "GLOBAL", placedAt: "evil" });
  });

  it("legacy sys_info payloads are found", async () => {
    const report = await auditCheckpoint(fixture("hostile_legacy_sys_info.pt"));
    expect(report.status).toBe("unsafe");
  });

  it("an unreadable file is reported, not thrown", async () => {
    const dir = await mkdtemp(join(tmpdir(), "audit-"));
    const path = join(dir, "junk.bin");
    await writeFile(path, "definitely not a checkpoint");
    const report = await auditCheckpoint(path);
    expect(report.status).toBe("unreadable");
    expect(report.error?.code).toBe("CHECKPOINT_UNSUPPORTED_FORMAT");
    const missing = await auditCheckpoint(join(dir, "missing.pt"));
    expect(missing.status).toBe("unreadable");
    expect(missing.error?.code).toBe("ENOENT");
  });
});
