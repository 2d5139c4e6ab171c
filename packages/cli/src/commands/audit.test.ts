import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostileContainers } from "@stmerge/test-utils";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../safe-pickle/test/fixtures");
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-audit-"));
  for (const f of ["sd_lightning.ckpt", "hostile_proto4.pkl", "hostile_legacy_sys_info.pt"]) copyFileSync(join(FIXTURES, f), join(dir, f));
  writeFileSync(join(dir, "junk.pt"), "not a checkpoint at all");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stmerge audit", () => {
  it("exit 0 for a clean file, listing the allowed globals", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["audit", "sd_lightning.ckpt"], io)).toBe(0);
    expect(io.out()).toMatch(/^CLEAN\s+.*sd_lightning\.ckpt \(torch-zip\)/);
    expect(io.out()).toContain("torch._utils._rebuild_tensor_v2");
    expect(io.out()).toMatch(/^╭─ ✔ clean ─+╮$/m);
    expect(io.out()).toMatch(/^│ read +1 file: 1 clean, 0 unsafe, 0 unreadable \(nothing executed\) +│$/m);
    expect(io.out()).toMatch(/^│ next +stmerge convert sd_lightning\.ckpt +│$/m);
  });

  it("exit 1 when any file is unsafe, naming the global and where it sits", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["audit", "sd_lightning.ckpt", "hostile_proto4.pkl", "junk.pt"], io)).toBe(1);
    expect(io.out()).toMatch(/UNSAFE\s+.*hostile_proto4\.pkl/);
    expect(io.out()).toMatch(/dangerous posix\.system {2}\(1×, first via STACK_GLOBAL in first pickle at byte \d+, under key "evil"\)/);
    // The closing panel: the verdicts, why the file is unsafe, and that convert will refuse it.
    expect(io.out()).toMatch(/^╭─ ✖ unsafe ─+╮$/m);
    expect(io.out()).toMatch(/^│ read +3 files: 1 clean, 1 unsafe, 1 unreadable \(nothing executed\) +│$/m);
    expect(io.out()).toMatch(/^│ why +hostile_proto4\.pkl: dangerous posix\.system +│$/m);
    expect(io.out()).toMatch(/^│ convert +refuses it /m);
  });

  it("a safetensors-shaped file whose bytes torch.load would run as a pickle is UNSAFE, not clean", async () => {
    const polyglot = hostileContainers().find((c) => c.name === "safetensors-shaped-pickle")!;
    writeFileSync(join(dir, "polyglot.safetensors"), polyglot.bytes);
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["audit", "polyglot.safetensors"], io)).toBe(1);
    expect(io.out()).toMatch(/^UNSAFE\s+.*polyglot\.safetensors\n/);
    expect(io.out()).toMatch(/unknown\s+builtins\.print/);
  });

  it("exit 2 when a file is unreadable and none is unsafe; --json carries the reports", async () => {
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["audit", "junk.pt", "--json"], io)).toBe(2);
    const json = JSON.parse(io.out());
    expect(json.exitCode).toBe(2);
    expect(json.reports[0]).toMatchObject({ status: "unreadable", error: { code: "CHECKPOINT_UNSUPPORTED_FORMAT" } });
    const legacy = memoryIo({ cwd: dir });
    expect(await runCli(["audit", "hostile_legacy_sys_info.pt", "--json"], legacy)).toBe(1);
    expect(JSON.parse(legacy.out()).reports[0].globals[0]).toMatchObject({ module: "posix", name: "system", verdict: "dangerous" });
  });
});

describe("stmerge audit output is data, not control", () => {
  /** A protocol-4 pickle calling posix.<name>() via STACK_GLOBAL, whose name tries to repaint the verdict line. */
  function pickleCalling(name: string): Buffer {
    const str = (s: string) => {
      const b = Buffer.from(s, "utf8");
      return Buffer.concat([Buffer.from([0x8c, b.length]), b]);
    };
    return Buffer.concat([Buffer.from([0x80, 0x04]), str("posix"), str(name), Buffer.from([0x93, 0x29, 0x52, 0x2e])]);
  }

  it("a crafted global name cannot repaint UNSAFE as CLEAN: every control character is printed escaped", async () => {
    writeFileSync(join(dir, "repaint.pkl"), pickleCalling("system\r\x1b[2K\x1b[1ACLEAN      harmless.ckpt\n\x1b]0;title\x07"));
    const io = memoryIo({ cwd: dir });
    expect(await runCli(["audit", "repaint.pkl"], io)).toBe(1);
    const out = io.out();
    // eslint-disable-next-line no-control-regex
    expect(out).not.toMatch(/[\r\x1b\x07]/);
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^UNSAFE\s+.*repaint\.pkl/);
    expect(lines.some((l) => l.startsWith("CLEAN"))).toBe(false);
    expect(out).toContain("posix.system\\r\\e[2K\\e[1ACLEAN      harmless.ckpt\\n\\e]0;title\\x07");
  });
});
