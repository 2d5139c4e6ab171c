import { rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "@stmerge/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";
import { hasTmux, startTmuxSession, writeBigTorchCheckpoint, type TmuxSession } from "./tmux-session.js";

const dir = tempDir("stmerge-tmux-");
let tmux: TmuxSession | undefined;
afterAll(() => {
  tmux?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("convert in a real terminal (tmux)", () => {
  it.skipIf(!hasTmux)("shows live percentage, throughput and ETA mid-run, then the summary, and the prompt comes back at once", { timeout: 300_000 }, async () => {
    const bundle = await bundleStmerge();
    // ~1 GiB: 64 tensors of 16 MiB.
    writeBigTorchCheckpoint(join(dir, "big.ckpt"), 64);
    tmux = startTmuxSession(`stmerge-tmux-${process.pid}`, dir, `cd ${dir} && HOME=${dir} STMERGE_CACHE=${dir}/cache.json node ${bundle} convert big.ckpt`, { columns: 100, rows: 30 });
    const frames = await tmux.record(/EXIT=\d+/, { everyMs: 150 });
    const last = frames.at(-1)!.text;
    expect(last).toContain("EXIT=0");
    // A mid-run frame: a percentage, a throughput (MB/s, or GB/s once convert runs faster than
    // 1 GB/s, as it does here) and an ETA on a live line.
    const mid = frames.find((f) => /\b\d{1,2}%/.test(f.text) && /\d+(\.\d+)? [MG]B\/s/.test(f.text) && /ETA \d+:\d\d/.test(f.text));
    expect(mid, `no mid-run frame with %, a throughput and ETA among ${frames.length} captures`).toBeDefined();
    // The final screen holds the summary and no leftover progress line.
    expect(last).toMatch(/converted/);
    expect(last).toMatch(/sha256\s+[0-9a-f]{64}/);
    // Total and each phase's own time (convert and the source hash run side by side; the output
    // is checked as it is written, so there is no separate verify phase).
    expect(last).toMatch(/time\s+\d+(\.\d)? s \((convert|hash) .*\)/);
    for (const phase of ["convert", "hash"]) expect(last).toMatch(new RegExp(`time .*\\b${phase} \\d`));
    expect(last).not.toMatch(/time .*\bverify \d/);
    expect(last).toMatch(/cache\s+output and source recorded/);
    expect(last).not.toMatch(/ETA/);
    // How long after the summary the shell got control back (reported, not asserted: timing tests flake).
    const summaryAt = frames.find((f) => f.text.includes("converted"))!.at;
    const exitAt = frames.find((f) => /EXIT=\d+/.test(f.text))!.at;
    console.log(`tmux convert: summary → prompt ${exitAt - summaryAt} ms (capture every 150 ms); ${frames.length} captures`);
  });
});
