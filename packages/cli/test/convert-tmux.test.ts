import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildTorchCheckpoint, type TorchTensorInput } from "../src/demo/write-torch-checkpoint.js";
import { bundleStmerge } from "./bundle-stmerge.js";

const hasTmux = spawnSync("tmux", ["-V"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "stmerge-tmux-"));
const session = `stmerge-tmux-${process.pid}`;
afterAll(() => {
  spawnSync("tmux", ["kill-session", "-t", session]);
  rmSync(dir, { recursive: true, force: true });
});

/** ~1 GiB torch zip checkpoint: 64 F32 tensors of 16 MiB sharing one patterned buffer (written in a few seconds). */
function writeBigCheckpoint(path: string): void {
  const data = new Uint8Array(16 * 1024 * 1024);
  const f32 = new Float32Array(data.buffer);
  for (let i = 0; i < f32.length; i++) f32[i] = Math.sin(i) * 0.01;
  const tensors: TorchTensorInput[] = Array.from({ length: 64 }, (_, i) => ({ name: `model.layers.${i}.weight`, dtype: "F32", shape: [4096, 1024], data }));
  writeFileSync(path, buildTorchCheckpoint(tensors));
}

const capture = (): string => execFileSync("tmux", ["capture-pane", "-p", "-t", session], { encoding: "utf8" });

describe("convert in a real terminal (tmux)", () => {
  it.skipIf(!hasTmux)("shows live percentage, throughput and ETA mid-run, then the summary, and the prompt comes back at once", { timeout: 300_000 }, async () => {
    const bundle = await bundleStmerge();
    const input = join(dir, "big.ckpt");
    writeBigCheckpoint(input);
    const script = join(dir, "run.sh");
    writeFileSync(script, `cd ${dir} && HOME=${dir} STMERGE_CACHE=${dir}/cache.json node ${bundle} convert big.ckpt; echo "EXIT=$?"; sleep 600\n`);
    execFileSync("tmux", ["new-session", "-d", "-s", session, "-x", "100", "-y", "30", "sh", script]);
    const frames: { at: number; text: string }[] = [];
    const started = Date.now();
    for (;;) {
      const text = capture();
      frames.push({ at: Date.now(), text });
      if (/EXIT=\d+/.test(text) || Date.now() - started > 240_000) break;
      await new Promise((r) => setTimeout(r, 150));
    }
    const last = frames.at(-1)!.text;
    expect(last).toContain("EXIT=0");
    // A mid-run frame: a percentage, a throughput and an ETA on a live line.
    const mid = frames.find((f) => /\b\d{1,2}%/.test(f.text) && /\d+(\.\d+)? MB\/s/.test(f.text) && /ETA \d+:\d\d/.test(f.text));
    expect(mid, `no mid-run frame with %, MB/s and ETA among ${frames.length} captures`).toBeDefined();
    // The final screen holds the summary and no leftover progress line.
    expect(last).toMatch(/converted/);
    expect(last).toMatch(/sha256\s+[0-9a-f]{64}/);
    // Total and each phase's own time (convert and the source hash run side by side).
    expect(last).toMatch(/time\s+\d+(\.\d)? s \((convert|hash|verify) .*\)/);
    for (const phase of ["convert", "hash", "verify"]) expect(last).toMatch(new RegExp(`time .*\\b${phase} \\d`));
    expect(last).toMatch(/cache\s+output and source recorded/);
    expect(last).not.toMatch(/ETA/);
    // How long after the summary the shell got control back (reported, not asserted: timing tests flake).
    const summaryAt = frames.find((f) => f.text.includes("converted"))!.at;
    const exitAt = frames.find((f) => /EXIT=\d+/.test(f.text))!.at;
    console.log(`tmux convert: summary → prompt ${exitAt - summaryAt} ms (capture every 150 ms); ${frames.length} captures`);
  });
});
