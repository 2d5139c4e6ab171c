import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFromF32, openSafetensors, writeSafetensors } from "@stmerge/core-tensors";
import { TINY_SD1_LAYOUT, type TinyTensor, writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";
import { hasTmux, startTmuxSession, type TmuxSession } from "./tmux-session.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-edit-tmux-"));
const PRELOAD = join(import.meta.dirname, "slow-file-io.mjs");
const sessions: TmuxSession[] = [];
afterAll(() => {
  for (const s of sessions) s.kill();
  rmSync(dir, { recursive: true, force: true });
});

const LAYOUT: TinyTensor[] = [
  ...TINY_SD1_LAYOUT,
  // One small tensor per UNet block more, so that a merge slowed by the preload takes seconds (to be watched and cancelled).
  ...Array.from({ length: 11 }, (_, n): [string, number[]] => [`model.diffusion_model.input_blocks.${n + 1}.0.emb_layers.1.bias`, [4]]),
  ...Array.from({ length: 12 }, (_, n): [string, number[]] => [`model.diffusion_model.output_blocks.${n}.0.emb_layers.1.bias`, [4]]),
];
beforeAll(async () => {
  for (const sub of ["sub", "loras"]) mkdirSync(join(dir, "models", sub), { recursive: true });
  for (const name of ["a", "b", "sub/c"]) {
    await writeTinySd1Model(join(dir, "models", `${name}.safetensors`), { seed: name.length, layout: LAYOUT });
  }
  // A kohya LoRA: the picker marks it and does not add it as a model.
  const lora: [string, number[]][] = [["lora_unet_out_2.lora_down.weight", [2, 4]], ["lora_unet_out_2.lora_up.weight", [4, 2]], ["lora_unet_out_2.alpha", []]];
  await writeSafetensors(join(dir, "models", "loras", "style.safetensors"), lora.map(([key, shape]) => ({ name: key, dtype: "F16" as const, shape, data: encodeFromF32(new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(0.5), "F16") })));
});


/** Screens of a frame list that show the merge's progress line below 100 %. */
const partialProgress = (frames: readonly { text: string }[]) => frames.map((f) => /merge\s.*?\s(\d+)%/.exec(f.text)).filter((m) => m && Number(m[1]) < 100);

describe("stmerge edit in a real terminal (tmux, bundled CLI)", () => {
  for (const [columns, rows] of [[80, 24], [200, 50]] as const) {
    it.skipIf(!hasTmux)(`${columns}×${rows}: open → change a weight → add a model with the picker → save (diff, confirm) → merge (cancel, then run) → quit`, { timeout: 240_000 }, async () => {
      const bundle = await bundleStmerge();
      const manifest = join(dir, `merge-${columns}.json`);
      const output = join(dir, `out-${columns}.safetensors`);
      writeFileSync(manifest, `${JSON.stringify({ models: [{ path: "models/a.safetensors", weight: 0.5, index: 0 }, { path: "models/b.safetensors", weight: 0.5, index: 1 }], output: `out-${columns}.safetensors` }, null, 2)}\n`);
      // Every file write of the real process waits 500 ms (test-only preload), so the merge stays on screen long enough to watch and cancel.
      const env = `HOME=${dir} STMERGE_CACHE=${dir}/cache.json STMERGE_TEST_WRITE_DELAY_MS=500`;
      const tmux = startTmuxSession(`stmerge-edit-${process.pid}-${columns}`, dir, `cd ${dir} && ${env} node --import ${PRELOAD} ${bundle} edit merge-${columns}.json`, { columns, rows });
      sessions.push(tmux);

      let screen = await tmux.waitFor(/valid: SD1\.5, 2 models, 28 tensors/);
      expect(screen).toMatch(/0 \[x\] models\/a\.safetensors.* 0\.50/);
      expect(screen).toContain("s save  m merge  q quit  d dry-run  ? help");
      tmux.send("*");
      tmux.send("+");
      screen = await tmux.waitFor(/models\/a\.safetensors.* 0\.61/);
      expect(screen).toContain("* modified");

      // The picker: the manifest's folder and subfolders, the LoRA marked; typing filters, Enter adds.
      tmux.send("a");
      screen = await tmux.waitFor(/models\/sub\/c\.safetensors +SD1\.5 fp16/);
      expect(screen).toMatch(/models\/loras\/style\.safetensors +LoRA \(not a model\)/);
      expect(screen).toMatch(/models\/a\.safetensors +SD1\.5 fp16 \(in manifest\)/);
      tmux.send("sub/c");
      screen = await tmux.waitFor(/filter sub\/c_ +1 of \d+ files/);
      tmux.send("\r");
      screen = await tmux.waitFor(/added models\/sub\/c\.safetensors with weight 0/);
      tmux.send("*");
      screen = await tmux.waitFor(/2 \[x\] models\/sub\/c\.safetensors.* 0\.10/);
      screen = await tmux.waitFor(/valid: SD1\.5, 3 models, 28 tensors/);

      tmux.send("s");
      screen = await tmux.waitFor(/change\(s\)/);
      expect(screen).toContain("models[0].weight: 0.5 → 0.61");
      expect(screen).toMatch(/models\[2\]: \(none\) → \{"path":"models\/sub\/c\.safetensors","weight":0\.1/);
      expect(screen).toContain("2 change(s)");
      tmux.send("y");
      screen = await tmux.waitFor(/^saved$/m);
      const saved = JSON.parse(readFileSync(manifest, "utf8"));
      expect(saved).toEqual({
        models: [
          { path: "models/a.safetensors", weight: 0.61, index: 0 },
          { path: "models/b.safetensors", weight: 0.5, index: 1 },
          { path: "models/sub/c.safetensors", weight: 0.1, architecture: "SD1.5", precision_detected: "fp16", index: 2 },
        ],
        output: `out-${columns}.safetensors`,
      });

      // m starts the merge (saved, no output yet: no question); q or Ctrl+C while it runs cancels it and removes its temp file.
      tmux.send("m");
      let frames = await tmux.record(/merge\s.*?\s\d+%/, { ms: 60_000, everyMs: 50 });
      const outputs = () => readdirSync(dir).filter((n) => n.includes(`out-${columns}.safetensors`));
      // Running: the output is being written into its temp file (`.<name>.<hex>.tmp`) beside it.
      expect(outputs()).toEqual([expect.stringMatching(new RegExp(`^\\.out-${columns}\\.safetensors\\.[0-9a-f]{12}\\.tmp$`))]);
      // q at one size, Ctrl+C at the other: both cancel the merge, not the editor.
      tmux.send(columns === 80 ? "q" : "\u0003");
      screen = await tmux.waitFor(/merge cancelled; no output written/);
      expect(outputs()).toEqual([]);
      tmux.send("\r");
      screen = await tmux.waitFor(/sum of included weights 1\.21/);

      tmux.send("m");
      frames = await tmux.record(/✓ merged/, { ms: 120_000, everyMs: 50 });
      screen = frames.at(-1)!.text;
      expect(screen).toContain("✓ merged");
      expect(partialProgress(frames).length, "a progress line below 100 % was on screen while it ran").toBeGreaterThan(0);
      expect(screen).toContain(`sha256  ${createHash("sha256").update(readFileSync(output)).digest("hex")}`);
      expect(screen).toMatch(/time +\d/);
      expect(screen.replace(/\s+/g, "")).toContain(`output${output}`.replace(/\s+/g, ""));
      // The merged file records the edited weights in its recipe metadata.
      const merged = await openSafetensors(output);
      const recipe = JSON.parse(merged.metadata.stmerge_manifest!) as { models: { path: string; weight: number }[] };
      await merged.close();
      expect(recipe.models.map((m) => [m.path, m.weight])).toEqual([["models/a.safetensors", 0.61], ["models/b.safetensors", 0.5], ["models/sub/c.safetensors", 0.1]]);
      expect(outputs()).toEqual([`out-${columns}.safetensors`]);

      tmux.send("q");
      screen = await tmux.waitFor(/EXIT=\d+/);
      expect(screen).toContain("EXIT=0");
      // The alternate screen was left: the editor's frame is gone from the shell's screen.
      expect(screen).not.toContain("s save  m merge");
    });
  }
});
