import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeTerminal } from "../test/fake-terminal.js";
import type { CliIo } from "./cli-io.js";
import { memoryIo } from "./cli-io.js";
import { writeDemoLegacyCheckpoint, writeDemoSafetensorsModels } from "./demo/write-demo-models.js";
import { runCli } from "./run-cli.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-frames-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const env = { HOME: dir, STMERGE_CACHE: join(dir, "cache.json"), TERM: "xterm-256color" };

beforeAll(async () => {
  mkdirSync(join(dir, "models"));
  await writeDemoLegacyCheckpoint(dir);
  await writeDemoSafetensorsModels(join(dir, "models"));
  expect(await runCli(["scan", "models", "-o", "merge.json"], memoryIo({ cwd: dir, env }))).toBe(0);
}, 60_000);

/**
 * Runs a command in-process on an 80-column fake terminal (stdout and stderr share the screen,
 * as in a real one) with a clock that moves 40 ms each time it is read, so frames come at a
 * fixed rhythm independent of the machine; timers never fire by themselves.
 */
async function onTerminal(argv: string[], columns = 80): Promise<{ code: number; term: FakeTerminal }> {
  const term = new FakeTerminal(columns);
  term.recordScreens = true;
  let t = 0;
  const io: CliIo = { stdout: term, stderr: term, env, cwd: dir, clock: { now: () => (t += 40), schedule: () => () => undefined } };
  const code = await runCli(argv, io);
  return { code, term };
}

const progressLine = /^\S+ (convert|merge|hash|verify) +[█░]+ +\d+% /;

describe("commands on a terminal", () => {
  it("convert: live lines with %, bytes, speed, elapsed and ETA, then only the summary panel", async () => {
    const { code, term } = await onTerminal(["convert", "demo-base.ckpt"]);
    expect(code).toBe(0);
    const live = term.screens.flat().filter((l) => progressLine.test(l));
    expect(live.some((l) => /^\S+ convert +[█░]+ +\d+% \d+\/\d+ [\d.]+ [KM]B\/[\d.]+ MB [\d.]+ [KM]B\/s \d:\d\d ETA \d:\d\d/.test(l))).toBe(true);
    expect(live.some((l) => /^\S+ verify /.test(l))).toBe(true);
    const screen = term.screen();
    expect(screen.some((l) => progressLine.test(l))).toBe(false);
    expect(screen).toContainEqual(expect.stringMatching(/^╭─ ✔ converted ─+╮$/));
    // Total (wall clock) and each phase's own time (this test's clock): convert, the source hash and the read-back.
    expect(screen).toContainEqual(expect.stringMatching(/^│ time +[\d.]+ (ms|s) \((?=.*\bconvert \d)(?=.*\bverify \d)(?=.*\bhash \d).*\) +│$/));
    expect(screen).toContainEqual(expect.stringMatching(/^│ sha256 +[0-9a-f]{64} │$/));
    expect(screen).toContainEqual(expect.stringMatching(/^│ next +stmerge inspect demo-base\.safetensors +│$/));
    expect(screen.at(-1)).toMatch(/^╰─+╯$/);
  });

  it("merge: a live merge line with the current block, then the merged panel with the output's hash", async () => {
    const { code, term } = await onTerminal(["merge", "-m", "merge.json"], 100);
    expect(code).toBe(0);
    expect(term.screens.flat().some((l) => /^\S+ merge +[█░]+ +\d+% +\d+\/1131 .* ETA \d:\d\d [A-Z][A-Za-z0-9_]*$/.test(l))).toBe(true);
    const screen = term.screen();
    expect(screen.some((l) => progressLine.test(l))).toBe(false);
    expect(screen).toContainEqual(expect.stringMatching(/^╭─ ✔ merged ─+╮$/));
    expect(screen).toContainEqual(expect.stringMatching(/^│ sha256 +[0-9a-f]{64} +│$/));
  });

  it("hash: per-file hashes and a summary; --no-color, NO_COLOR and TERM=dumb print no colour codes, TERM=dumb no Unicode", async () => {
    const { code, term } = await onTerminal(["hash", "models/demo-anime.safetensors", "--no-cache"]);
    expect(code).toBe(0);
    expect(term.all()).toMatch(/\x1b\[3\dm/); // coloured on a terminal
    expect(term.screen()).toContainEqual(expect.stringMatching(/^ {2}SHA256 +[0-9a-f]{64}$/));
    expect(term.screen()).toContainEqual(expect.stringMatching(/^╭─ ✔ hashed ─+╮$/));
    for (const variant of [["--no-color"], []]) {
      const t = new FakeTerminal(80);
      const io: CliIo = { stdout: t, stderr: t, env: { ...env, ...(variant.length ? {} : { NO_COLOR: "1" }) }, cwd: dir };
      expect(await runCli([...variant, "hash", "models/demo-anime.safetensors", "--no-cache"], io)).toBe(0);
      expect(t.all()).not.toMatch(/\x1b\[\d+m/);
    }
    const dumb = new FakeTerminal(80);
    expect(await runCli(["hash", "models/demo-anime.safetensors", "--no-cache"], { stdout: dumb, stderr: dumb, env: { ...env, TERM: "dumb" }, cwd: dir })).toBe(0);
    expect(dumb.all()).not.toMatch(/\x1b/);
    expect(dumb.screen()).toContainEqual(expect.stringMatching(/^\+- ok hashed -+\+$/));
  });
});
