import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
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
    // No read-back phase: the output is checked as it is written.
    expect(live.some((l) => /^\S+ verify /.test(l))).toBe(false);
    const screen = term.screen();
    expect(screen.some((l) => progressLine.test(l))).toBe(false);
    expect(screen).toContainEqual(expect.stringMatching(/^╭─ ✔ converted ─+╮$/));
    // Total (wall clock) and each phase's own time (this test's clock): convert and the source hash.
    expect(screen).toContainEqual(expect.stringMatching(/^│ time +[\d.]+ (ms|s) \((?=.*\bconvert \d)(?=.*\bhash \d).*\) +│$/));
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

/** The closing panel at the end of a screen: its title and rows (a wrapped value joined again), checked to be a whole box. */
function closingPanel(screen: readonly string[], columns: number): { title: string; rows: Map<string, string> } {
  const bottom = screen.length - 1;
  expect(screen[bottom]).toMatch(/^(╰─+╯|\+-+\+)$/);
  let top = bottom - 1;
  while (top >= 0 && !/^(╭─|\+-) /.test(screen[top]!)) top--;
  expect(top).toBeGreaterThanOrEqual(0);
  const width = screen[bottom]!.length;
  expect(width).toBeLessThanOrEqual(columns);
  const title = /^(?:╭─|\+-) (.*?) (?:─+╮|-+\+)$/.exec(screen[top]!)?.[1] ?? "";
  expect(screen[top]!.length).toBe(width);
  const chunks = new Map<string, string[]>();
  const body = screen.slice(top + 1, bottom);
  const indent = /^\S+ +/.exec(body[0]!.slice(2))![0].length;
  const room = width - 4 - indent;
  let label = "";
  for (const line of body) {
    // Every row is closed by the right edge at the box's width.
    expect(line).toMatch(/^[│|] .* [│|]$/);
    expect(line.length).toBe(width);
    const content = line.slice(2, -2);
    const head = content.slice(0, indent).trim();
    if (head) chunks.set((label = head), []);
    chunks.get(label)!.push(content.slice(indent).trimEnd());
  }
  // A wrapped value is joined again: a short line that does not end in "/" was broken at a space (render-panel's wrapValue).
  const rows = new Map<string, string>();
  for (const [k, parts] of chunks) rows.set(k, parts.reduce((value, part, i) => (i === 0 ? part : value + (parts[i - 1]!.endsWith("/") || parts[i - 1]!.length === room ? "" : " ") + part), ""));
  return { title, rows };
}

describe("closing panels on an 80-column terminal, coloured and with NO_COLOR", () => {
  const hostile = join(dir, "hostile_proto4.pkl");
  beforeAll(async () => {
    copyFileSync(join(fileURLToPath(new URL("../../safe-pickle/test/fixtures/", import.meta.url)), "hostile_proto4.pkl"), hostile);
    const loras = fileURLToPath(new URL("../../merge-engine/test/fixtures/lora/", import.meta.url));
    for (const f of ["sdxl-tiny.safetensors", "sdxl-locon.safetensors", "sdxl-kohya-lora.safetensors", "sd1-tiny.safetensors", "sd1-tuned.safetensors"]) copyFileSync(join(loras, f), join(dir, f));
    expect(await runCli(["convert", "demo-base.ckpt", "-o", "frames-verify.safetensors"], memoryIo({ cwd: dir, env }))).toBe(0);
  }, 60_000);

  const cases: { name: string; argv: string[]; code: number; title: string; rows: Record<string, string | RegExp> }[] = [
    { name: "verify", argv: ["verify", "demo-base.ckpt", "frames-verify.safetensors"], code: 0, title: "✔ verified", rows: { original: /demo-base\.ckpt \(torch-[\w-]+, [\d.]+ [KM]B\)$/, result: /^OK: \d+ identical, 0 within cast tolerance, \d+ pruned, 0 mismatched, 0 missing, 0 extra$/, wrote: "nothing (verify only reads)", time: /^[\d.]+ (m?s|min \d+ s) \(verify [\d.]+ (m?s|min \d+ s)\)$/, next: "stmerge inspect frames-verify.safetensors" } },
    { name: "inspect", argv: ["inspect", "models/demo-anime.safetensors", "-n", "2"], code: 0, title: "✔ demo-anime.safetensors", rows: { kind: /^sd-checkpoint; SD1\.5/, read: "the header only; wrote nothing", next: "stmerge hash demo-anime.safetensors" } },
    { name: "audit (clean)", argv: ["audit", "demo-base.ckpt"], code: 0, title: "✔ clean", rows: { read: "1 file: 1 clean, 0 unsafe, 0 unreadable (nothing executed)", wrote: "nothing (audit only reads)", next: "stmerge convert demo-base.ckpt" } },
    { name: "audit (unsafe)", argv: ["audit", "hostile_proto4.pkl"], code: 1, title: "✖ unsafe", rows: { why: "hostile_proto4.pkl: dangerous posix.system", convert: "refuses it (it loads only allow-listed globals; get a .safetensors release instead)" } },
    { name: "scan", argv: ["scan", "models", "-o", "frames.json", "--overwrite"], code: 0, title: "✔ manifest written", rows: { read: /^2 models in .*models \([\d.]+ [KM]B; headers only\)$/, manifest: `written to ${join(dir, "frames.json")}`, next: `stmerge merge --manifest ${join(dir, "frames.json")} --dry-run (review the manifest first)` } },
    { name: "lora bake", argv: ["lora", "bake", "sdxl-tiny.safetensors", "sdxl-locon.safetensors:0.5", "-o", "frames-baked.safetensors", "--overwrite"], code: 0, title: "✔ baked", rows: { checkpoint: "sdxl-tiny.safetensors (SDXL)", lora: /^sdxl-locon\.safetensors × 0\.5 \(\d+ modules: /, changed: "3 of 16 tensors (3 modules placed)", next: "stmerge inspect frames-baked.safetensors" } },
    { name: "lora extract", argv: ["lora", "extract", "sd1-tuned.safetensors", "sd1-tiny.safetensors", "--rank", "4", "-o", "frames-lora.safetensors", "--overwrite"], code: 0, title: "✔ extracted LoRA", rows: { from: "sd1-tuned.safetensors − sd1-tiny.safetensors (rank 4)", next: "stmerge inspect frames-lora.safetensors" } },
    { name: "lora merge", argv: ["lora", "merge", "sdxl-kohya-lora.safetensors:0.5", "sdxl-locon.safetensors", "--rank", "64", "-o", "frames-merged-lora.safetensors", "--overwrite"], code: 0, title: "✔ merged LoRAs", rows: { modules: /^14: 13 concatenated exactly, 1 re-compressed by SVD \(worst relative error \d+\.\d\d%\)$/, next: "stmerge inspect frames-merged-lora.safetensors" } },
    { name: "cache add", argv: ["cache", "add", "models/demo-photo.safetensors", "--no-civitai"], code: 0, title: "✔ cached", rows: { files: /^1 file: [01] hashed \([\d.]+ [KMG]?B\), [01] from cache$/, recorded: `in ${join(dir, "cache.json")}`, next: /^stmerge cache show [0-9a-f]{10}$/ } },
    { name: "library scan", argv: ["library", "scan", "models"], code: 0, title: "✔ library scanned", rows: { read: "2 model paths, 2 stored files (0 shown at more than one path by links)", duplicates: "no duplicates", wrote: "nothing (scan only reads)" } },
    { name: "extract-vae", argv: ["extract-vae", "models/demo-anime.safetensors", "-o", "frames-vae.safetensors", "--overwrite"], code: 0, title: "✔ extracted VAE", rows: { output: join(dir, "frames-vae.safetensors"), from: join(dir, "models", "demo-anime.safetensors"), next: "stmerge inspect frames-vae.safetensors" } },
  ];

  // A panel line wider than the terminal would wrap and break the box, which closingPanel checks
  // line by line (detail lines above it, like audit's list of allowed globals, may wrap).
  it.each(cases)("$name ends with a whole panel no wider than 80 columns; NO_COLOR draws the same without colour codes", async ({ argv, code, title, rows }) => {
    const coloured = await onTerminal(argv);
    expect(coloured.code).toBe(code);
    expect(coloured.term.all()).toMatch(/\x1b\[3\dm/);
    const t = new FakeTerminal(80);
    expect(await runCli(argv, { stdout: t, stderr: t, env: { ...env, NO_COLOR: "1" }, cwd: dir })).toBe(code);
    expect(t.all()).not.toMatch(/\x1b\[\d+(;\d+)*m/);
    for (const term of [coloured.term, t]) {
      const screen = term.screen();
      // No progress line is left behind: the panel closes the screen.
      expect(screen.some((l) => progressLine.test(l))).toBe(false);
      const panel = closingPanel(screen, 80);
      expect(panel.title).toBe(title);
      for (const [label, value] of Object.entries(rows)) {
        if (typeof value === "string") expect(panel.rows.get(label), label).toBe(value);
        else expect(panel.rows.get(label), label).toMatch(value);
      }
    }
  });

  it("TERM=dumb draws the audit verdict panel in ASCII", async () => {
    const dumb = new FakeTerminal(80);
    expect(await runCli(["audit", "hostile_proto4.pkl"], { stdout: dumb, stderr: dumb, env: { ...env, TERM: "dumb" }, cwd: dir })).toBe(1);
    expect(dumb.all()).not.toMatch(/\x1b/);
    const panel = closingPanel(dumb.screen(), 80);
    expect(panel.title).toBe("x unsafe");
    expect(panel.rows.get("why")).toBe("hostile_proto4.pkl: dangerous posix.system");
  });
});
