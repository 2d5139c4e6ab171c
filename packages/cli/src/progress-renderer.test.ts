import { describe, expect, it } from "vitest";
import { FakeTerminal, ManualClock } from "../test/fake-terminal.js";
import type { CliIo } from "./cli-io.js";
import { createProgressRenderer, type ProgressMode } from "./progress-renderer.js";
import { createTheme, PLAIN_THEME } from "./theme.js";

const MB = 1_000_000;

function setup(mode: ProgressMode, columns: number, theme = createTheme({ color: false, unicode: true })) {
  const term = new FakeTerminal(columns);
  const clock = new ManualClock();
  const io: CliIo = { stdout: { write: () => true }, stderr: term, env: {}, cwd: "/" };
  const progress = createProgressRenderer(io, mode, { theme, now: clock.now, schedule: clock.schedule });
  return { term, clock, progress };
}

describe("TTY progress", () => {
  it("draws two concurrent phases on two lines with percentage, bytes, MB/s, elapsed and ETA", () => {
    const { term, clock, progress } = setup("tty", 120);
    // convert at 100 MB/s, hash at 200 MB/s, both of 2 GB, for 4 s.
    for (let t = 1; t <= 40; t++) {
      clock.advance(100);
      progress.onProgress({ phase: "convert", bytesDone: t * 10 * MB, bytesTotal: 2000 * MB, tensor: `model.diffusion_model.input_blocks.${t}.weight`, tensorsDone: t, tensorsTotal: 1131 });
      progress.onProgress({ phase: "hash", bytesDone: t * 20 * MB, bytesTotal: 2000 * MB });
    }
    clock.advance(100);
    const screen = term.screen();
    expect(screen).toHaveLength(2);
    expect(screen[0]).toMatch(/^\S convert █+░+ +20% +40\/1131 +400 MB\/2.00 GB +100 MB\/s 0:04 ETA 0:16 .*input_blocks\.40\.weight$/);
    expect(screen[1]).toMatch(/^\S hash    █+░+ +40% +800 MB\/2.00 GB +200 MB\/s 0:04 ETA 0:06$/);
    for (const line of screen) expect(line.length).toBeLessThan(120);
    expect(term.wraps).toBe(0);
  });

  it.each([80, 120, 40])("gives concurrent phases bars of one width at %i columns, so their percentages line up", (columns) => {
    const { term, clock, progress } = setup("tty", columns);
    // convert carries items and a tensor name, hash neither: on its own each line would pick another bar width.
    for (let t = 1; t <= 20; t++) {
      clock.advance(100);
      progress.onProgress({ phase: "convert", bytesDone: t * 10 * MB, bytesTotal: 2000 * MB, tensor: `model.diffusion_model.input_blocks.${t}.weight`, tensorsDone: t, tensorsTotal: 1131 });
      progress.onProgress({ phase: "hash", bytesDone: t * 20 * MB, bytesTotal: 2000 * MB });
    }
    clock.advance(100);
    const screen = term.screen();
    expect(screen).toHaveLength(2);
    const bars = screen.map((l) => /[█░]+/.exec(l)?.[0] ?? "");
    expect(bars[0]!.length).toBeGreaterThanOrEqual(3);
    expect(bars[1]!.length).toBe(bars[0]!.length);
    expect(screen[1]!.indexOf("%")).toBe(screen[0]!.indexOf("%"));
    expect(screen[0]).toMatch(/ 10%/);
    expect(screen[1]).toMatch(/ 20%/);
    for (const line of screen) expect(line.length).toBeLessThan(columns);
    expect(term.wraps).toBe(0);
  });

  it("redraws at most 10 times a second however many events arrive, and draws the last state", () => {
    const { term, clock, progress } = setup("tty", 100);
    for (let i = 1; i <= 1000; i++) {
      clock.advance(1); // 1000 events in one second
      progress.onProgress({ phase: "merge", bytesDone: i * MB, bytesTotal: 2000 * MB });
    }
    clock.advance(100);
    const frames = term.writes.length;
    expect(frames).toBeGreaterThanOrEqual(9);
    expect(frames).toBeLessThanOrEqual(12);
    expect(term.screen()[0]).toContain("1.00 GB/2.00 GB");
  });

  it("shows a spinner with bytes and rate for a phase of unknown length and keeps it moving", () => {
    const { term, clock, progress } = setup("tty", 80);
    progress.onProgress({ phase: "scan", bytesDone: 0, bytesTotal: 0, itemsDone: 0 });
    const first = term.screen()[0];
    clock.advance(1000);
    progress.onProgress({ phase: "scan", bytesDone: 50 * MB, bytesTotal: 0, itemsDone: 3 });
    clock.advance(100);
    const later = term.screen()[0]!;
    expect(later).not.toEqual(first);
    expect(later).toMatch(/^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] scan 3 +50.0 MB +\d+(\.\d+)? MB\/s 0:01/);
    expect(later).not.toContain("%");
  });

  it("after stop() (an interrupt) draws nothing more, so later events cannot overwrite the interrupt line", () => {
    const { term, clock, progress } = setup("tty", 80);
    progress.onProgress({ phase: "merge", bytesDone: 10, bytesTotal: 100 });
    clock.advance(200);
    progress.stop();
    term.write("stmerge: merge interrupted (SIGINT); out.safetensors not written\n");
    // Items still in flight finish their writes and report them.
    progress.onProgress({ phase: "merge", bytesDone: 20, bytesTotal: 100 });
    clock.advance(500);
    progress.onProgress({ phase: "merge", bytesDone: 30, bytesTotal: 100 });
    clock.advance(500);
    expect(term.screen()).toEqual(["stmerge: merge interrupted (SIGINT); out.safetensors not written"]);
    expect(clock.pending()).toBe(0);
  });

  it("clears its lines on done() (finish or error) and stops its timer", () => {
    const { term, clock, progress } = setup("tty", 80);
    progress.onProgress({ phase: "convert", bytesDone: 10, bytesTotal: 100 });
    progress.onProgress({ phase: "hash", bytesDone: 10, bytesTotal: 100 });
    clock.advance(200);
    expect(term.screen()).toHaveLength(2);
    progress.done();
    expect(term.screen()).toEqual([]);
    expect(clock.pending()).toBe(0);
  });

  it("marks a finished phase and reports it with its own time for the summary", () => {
    const { term, clock, progress } = setup("tty", 100);
    progress.onProgress({ phase: "verify", bytesDone: 0, bytesTotal: 300 * MB });
    clock.advance(1500);
    progress.onProgress({ phase: "verify", bytesDone: 300 * MB, bytesTotal: 300 * MB });
    clock.advance(100);
    expect(term.screen()[0]).toMatch(/^✔ verify █+ 100% +300 MB\/300 MB +200 MB\/s 0:02$/);
    expect(progress.finishedPhases()).toEqual([expect.objectContaining({ phase: "verify", elapsedMs: 1500, bytesDone: 300 * MB })]);
  });

  it("degrades to phase, plain bar and percentage at 40 columns", () => {
    const { term, clock, progress } = setup("tty", 40, PLAIN_THEME);
    progress.onProgress({ phase: "convert", bytesDone: 0, bytesTotal: 1000 });
    clock.advance(1000);
    progress.onProgress({ phase: "convert", bytesDone: 500, bytesTotal: 1000, tensor: "a.very.long.tensor.name.that.cannot.fit" });
    clock.advance(100);
    const line = term.screen()[0]!;
    expect(line).toMatch(/^convert #+-+  50%$/);
    expect(line.length).toBeLessThanOrEqual(39);
    expect(term.wraps).toBe(0);
  });

  it("escapes control characters of tensor names taken from the file", () => {
    const { term, clock, progress } = setup("tty", 120);
    progress.onProgress({ phase: "convert", bytesDone: 1, bytesTotal: 10, tensor: "evil\x1b]0;title\x07name" });
    clock.advance(100);
    expect(term.screen()[0]).toContain("evil\\e]0;title\\x07name");
  });

  it("writes plain lines without control codes when the terminal reports 0 columns", () => {
    const { term, clock, progress } = setup("tty", 0);
    progress.onProgress({ phase: "convert", bytesDone: 0, bytesTotal: 100 });
    clock.advance(1000);
    progress.onProgress({ phase: "convert", bytesDone: 100, bytesTotal: 100 });
    progress.done();
    expect(term.all()).not.toMatch(/[\x1b\r]/);
    expect(term.screen()).toEqual(["convert: started (100 B)", "convert: done, 100 B in 1.0 s, 100 B/s"]);
  });
});

describe("plain (log) progress", () => {
  it("prints a line per phase at start and end and at most every 10 s between, no control codes", () => {
    const { term, clock, progress } = setup("plain", 80);
    for (let s = 0; s <= 35; s++) {
      progress.onProgress({ phase: "merge", bytesDone: s * 10 * MB, bytesTotal: 350 * MB, tensor: `t${s}` });
      if (s % 2 === 0) progress.onProgress({ phase: "hash", bytesDone: s * 10 * MB, bytesTotal: 700 * MB });
      clock.advance(1000);
    }
    const lines = term.screen();
    expect(term.all()).not.toMatch(/[\x1b\r]/);
    expect(lines.filter((l) => l.startsWith("merge:"))).toEqual([
      "merge: started (350 MB)",
      "merge: 28%, 100 MB of 350 MB, 10.0 MB/s, ETA 25.0 s, t10",
      "merge: 57%, 200 MB of 350 MB, 10.0 MB/s, ETA 15.0 s, t20",
      "merge: 85%, 300 MB of 350 MB, 10.0 MB/s, ETA 5.0 s, t30",
      "merge: done, 350 MB in 35.0 s, 10.0 MB/s",
    ]);
    expect(lines.filter((l) => l.startsWith("hash:"))).toHaveLength(4); // started + 3 in 34 s, not finished
  });

  it("reports each run of a phase again (hash of the next file)", () => {
    const { term, clock, progress } = setup("plain", 80);
    for (const file of ["a", "b"]) {
      progress.onProgress({ phase: "hash", bytesDone: 0, bytesTotal: 10, detail: file });
      clock.advance(500);
      progress.onProgress({ phase: "hash", bytesDone: 10, bytesTotal: 10, detail: file });
      progress.done();
    }
    expect(term.screen().filter((l) => l.includes("done"))).toHaveLength(2);
    expect(progress.finishedPhases()).toHaveLength(2);
  });
});

describe("--json progress", () => {
  it("throttles to at most 2 lines a second per phase, always with the same fields, first and last included", () => {
    const { term, clock, progress } = setup("json", 1000);
    for (let i = 0; i <= 1000; i++) {
      progress.onProgress({ phase: "merge", bytesDone: i * MB, bytesTotal: 1000 * MB, tensorsDone: i, tensorsTotal: 1000 });
      clock.advance(5); // 5 s in all
    }
    const events = term.screen().map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.length).toBeGreaterThanOrEqual(10);
    expect(events.length).toBeLessThanOrEqual(12);
    for (const e of events) expect(Object.keys(e)).toEqual(["type", "phase", "bytesDone", "bytesTotal", "itemsDone", "itemsTotal", "elapsedMs", "etaMs"]);
    expect(events[0]).toMatchObject({ type: "progress", phase: "merge", bytesDone: 0, itemsDone: 0, itemsTotal: 1000, etaMs: null });
    expect(events.at(-1)).toMatchObject({ bytesDone: 1000 * MB, bytesTotal: 1000 * MB, itemsDone: 1000, elapsedMs: 5000, etaMs: 0 });
    const mid = events[4]!;
    expect(mid.etaMs).toBeGreaterThan(0);
  });

  it("prints nothing with --quiet", () => {
    const { term, progress } = setup("none", 80);
    progress.onProgress({ phase: "merge", bytesDone: 1, bytesTotal: 2 });
    progress.done();
    expect(term.writes).toEqual([]);
  });
});
