import { describe, expect, it } from "vitest";
import { memoryIo } from "./cli-io.js";
import { runCli } from "./run-cli.js";
import { CLI_VERSION } from "./version.js";

describe("runCli", () => {
  it("prints help listing the commands, exit 0", async () => {
    const io = memoryIo();
    expect(await runCli(["--help"], io)).toBe(0);
    expect(io.out()).toContain("Usage: stmerge");
    expect(io.out()).toContain("inspect");
    expect(io.out()).toContain("demo");
    expect(io.out()).toContain("Examples:");
  });

  it("prints the version", async () => {
    const io = memoryIo();
    expect(await runCli(["--version"], io)).toBe(0);
    expect(io.out().trim()).toBe(CLI_VERSION);
  });

  it("gives every command its own help with examples", async () => {
    for (const command of ["inspect", "demo"]) {
      const io = memoryIo();
      expect(await runCli([command, "--help"], io)).toBe(0);
      expect(io.out()).toContain(`Usage: stmerge ${command}`);
      expect(io.out()).toContain(`$ stmerge ${command}`);
    }
  });

  it("rejects an unknown command with a usage error (exit 2) and one clear line", async () => {
    const io = memoryIo();
    expect(await runCli(["frobnicate"], io)).toBe(2);
    expect(io.err()).toContain("unknown command 'frobnicate'");
    expect(io.err()).not.toContain("    at ");
  });

  it("rejects a missing argument with exit 2", async () => {
    const io = memoryIo();
    expect(await runCli(["inspect"], io)).toBe(2);
    expect(io.err()).toContain("missing required argument 'file'");
  });
});
