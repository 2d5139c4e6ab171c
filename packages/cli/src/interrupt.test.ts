import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAtomicFile, openTempPaths } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { memoryIo } from "./cli-io.js";
import { createInterrupts, type InterruptSignalName, type SignalTarget } from "./interrupt.js";
import { runCli } from "./run-cli.js";
import { TORCH_FIXTURES } from "../test/torch-fixture-dir.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-interrupt-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fakeProcess(): SignalTarget & { emit(name: InterruptSignalName): void; exits: number[]; listeners(): number } {
  const handlers = new Map<string, Set<() => void>>();
  const exits: number[] = [];
  return {
    on(event, listener) {
      if (!handlers.has(event)) handlers.set(event, new Set());
      handlers.get(event)!.add(listener);
    },
    off(event, listener) {
      handlers.get(event)?.delete(listener);
    },
    exit(code): never {
      exits.push(code);
      throw new Error(`exit ${code}`);
    },
    emit(name) {
      for (const l of handlers.get(name) ?? []) l();
    },
    exits,
    listeners: () => [...handlers.values()].reduce((n, s) => n + s.size, 0),
  };
}

describe("interrupts", () => {
  it("the first signal aborts; a second one removes open temp files synchronously and exits with the first signal's code", async () => {
    const target = fakeProcess();
    let err = "";
    const interrupts = createInterrupts({ target, writeErr: (t) => (err += t) });
    expect(target.listeners()).toBe(3);
    const file = await createAtomicFile(join(dir, "out.bin"));
    target.emit("SIGTERM");
    expect(interrupts.signal.aborted).toBe(true);
    expect(interrupts.received).toBe("SIGTERM");
    expect(interrupts.pendingOutputs).toEqual([file.tempPath]);
    expect(() => target.emit("SIGINT")).toThrow("exit 143");
    expect(target.exits).toEqual([143]);
    expect(err).toBe("\nstmerge: interrupted again (SIGINT); exiting now, removed 1 temp file\n");
    expect(readdirSync(dir).filter((n) => n.startsWith(".out.bin."))).toEqual([]);
    expect(openTempPaths()).toEqual([]);
    await file.handle.close().catch(() => undefined);
    interrupts.dispose();
    expect(target.listeners()).toBe(0);
  });

  it("runCli in-process: an interrupted convert exits 143 with the one line, writes nothing and leaves no temp file", async () => {
    const work = mkdtempSync(join(dir, "convert-"));
    copyFileSync(join(TORCH_FIXTURES, "vae.pt"), join(work, "vae.pt"));
    const interrupts = createInterrupts();
    interrupts.interrupt("SIGTERM");
    const io = memoryIo({ cwd: work, env: { STMERGE_NO_BANNER: "1" } });
    expect(await runCli(["convert", "vae.pt", "--no-cache", "--json"], io, { interrupts })).toBe(143);
    expect(io.err().trim().split("\n").at(-1)).toBe("stmerge: convert interrupted (SIGTERM); no output written");
    expect(JSON.parse(io.out())).toMatchObject({ error: { code: "INTERRUPTED" } });
    expect(readdirSync(work)).toEqual(["vae.pt"]);
  });

  it("demo: an interrupt stops the current step and the demo, with one line from the demo", async () => {
    const work = join(dir, "demo");
    const interrupts = createInterrupts();
    const io = memoryIo({ cwd: dir, env: {} });
    const running = runCli(["demo", work], io, { interrupts });
    // Interrupt once the second step has started.
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (/\n2\. /.test(io.out())) {
          clearInterval(poll);
          interrupts.interrupt("SIGINT");
          resolve();
        }
      }, 5);
    });
    expect(await running).toBe(130);
    const lines = io.err().trim().split("\n");
    expect(lines.filter((l) => l.includes("interrupted"))).toEqual(["stmerge: demo interrupted (SIGINT); nothing partial left behind"]);
    expect(lines.at(-1)).toBe("stmerge: demo interrupted (SIGINT); nothing partial left behind");
    expect(io.out()).not.toMatch(/\n3\. /);
    const leftovers = readdirSync(work, { recursive: true }).map(String).filter((n) => n.endsWith(".tmp"));
    expect(leftovers).toEqual([]);
  });

  it("a run that was not interrupted is unaffected and leaves no listeners behind", async () => {
    const target = fakeProcess();
    writeFileSync(join(dir, "x.txt"), "x");
    const io = memoryIo();
    expect(await runCli(["--version"], io, { signals: target })).toBe(0);
    expect(target.listeners()).toBe(0);
  });
});
