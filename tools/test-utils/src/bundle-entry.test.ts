import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bundleEntry } from "./bundle-entry.js";
import { tempDir } from "./temp-dir.js";

describe("bundleEntry", () => {
  it("bundles a TypeScript entry into one runnable ESM file named with the process id", async () => {
    const dir = tempDir();
    const entry = join(dir, "entry.ts");
    writeFileSync(entry, "const n: number = 6 * 7;\nconsole.log(`answer ${n}`);\n");
    const out = await bundleEntry(entry, { outDir: join(dir, "out"), name: "probe" });
    expect(out).toBe(join(dir, "out", `probe-${process.pid}.mjs`));
    expect(spawnSync(process.execPath, [out], { encoding: "utf8" }).stdout).toBe("answer 42\n");
  });

  it("removes the bundles of test processes that have ended, and keeps those of live ones", async () => {
    const dir = tempDir();
    const entry = join(dir, "entry.ts");
    writeFileSync(entry, "export {};\n");
    const ended = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    const outDir = join(dir, "out");
    await bundleEntry(entry, { outDir, name: "probe" });
    const stale = join(outDir, `probe-${ended}.mjs`);
    const live = join(outDir, `probe-${process.ppid}.mjs`);
    const other = join(outDir, `other-${ended}.mjs`);
    for (const f of [stale, live, other]) writeFileSync(f, "");
    await bundleEntry(entry, { outDir, name: "probe" });
    expect([existsSync(stale), existsSync(live), existsSync(other)]).toEqual([false, true, true]);
  });
});
