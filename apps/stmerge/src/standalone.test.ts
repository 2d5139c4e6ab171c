import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const dist = join(import.meta.dirname, "..", "dist");
const dir = mkdtempSync(join(tmpdir(), "stmerge-standalone-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// `pnpm test` builds first; the bundle must be one file that runs away from the repository.
describe("the bundled stmerge", () => {
  it("is a single file", () => {
    expect(existsSync(join(dist, "stmerge.js")), "apps/stmerge/dist/stmerge.js is missing: run `pnpm build` first").toBe(true);
    expect(readdirSync(dist).filter((f) => f.endsWith(".js"))).toEqual(["stmerge.js"]);
  });

  it("runs the whole demo when copied alone into an empty folder", () => {
    copyFileSync(join(dist, "stmerge.js"), join(dir, "stmerge.js"));
    const out = execFileSync(process.execPath, [join(dir, "stmerge.js"), "demo", join(dir, "demo"), "--json"], { cwd: dir, encoding: "utf8", maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NO_COLOR: "1" } });
    const summary = JSON.parse(out) as { ok: boolean; steps: { exitCode: number }[] };
    expect(summary.ok).toBe(true);
    expect(summary.steps.length).toBeGreaterThanOrEqual(8);
    expect(summary.steps.every((s) => s.exitCode === 0)).toBe(true);
  });
});
