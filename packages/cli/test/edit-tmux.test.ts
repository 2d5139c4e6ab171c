import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFromF32, writeSafetensors } from "@stmerge/core-tensors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";
import { hasTmux, startTmuxSession, type TmuxSession } from "./tmux-session.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-edit-tmux-"));
const sessions: TmuxSession[] = [];
afterAll(() => {
  for (const s of sessions) s.kill();
  rmSync(dir, { recursive: true, force: true });
});

const LAYOUT: [string, number[]][] = [
  ["cond_stage_model.transformer.text_model.final_layer_norm.weight", [8]],
  ["first_stage_model.decoder.conv_in.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.0.0.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [2, 768]],
  ["model.diffusion_model.out.2.bias", [4]],
];
beforeAll(async () => {
  mkdirSync(join(dir, "models"));
  for (const name of ["a", "b"]) {
    await writeSafetensors(join(dir, "models", `${name}.safetensors`), LAYOUT.map(([key, shape], i) => ({ name: key, dtype: "F16" as const, shape, data: encodeFromF32(Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, k) => Math.cos(i + k)), "F16") })));
  }
});


describe("stmerge edit in a real terminal (tmux, bundled CLI)", () => {
  for (const [columns, rows] of [[80, 24], [200, 50]] as const) {
    it.skipIf(!hasTmux)(`${columns}×${rows}: edit → change a weight → save → confirm, then quit`, { timeout: 180_000 }, async () => {
      const bundle = await bundleStmerge();
      const manifest = join(dir, `merge-${columns}.json`);
      writeFileSync(manifest, `${JSON.stringify({ models: [{ path: "models/a.safetensors", weight: 0.5, index: 0 }, { path: "models/b.safetensors", weight: 0.5, index: 1 }], output: "out.safetensors" }, null, 2)}\n`);
      const tmux = startTmuxSession(`stmerge-edit-${process.pid}-${columns}`, dir, `cd ${dir} && HOME=${dir} STMERGE_CACHE=${dir}/cache.json node ${bundle} edit merge-${columns}.json`, { columns, rows });
      sessions.push(tmux);

      let screen = await tmux.waitFor(/valid: SD1\.5, 2 models, 5 tensors/);
      expect(screen).toMatch(/0 \[x\] models\/a\.safetensors.* 0\.50/);
      expect(screen).toContain("s save  q quit  d dry-run  ? help");
      tmux.send("*");
      tmux.send("+");
      screen = await tmux.waitFor(/models\/a\.safetensors.* 0\.61/);
      expect(screen).toContain("* modified");
      tmux.send("s");
      screen = await tmux.waitFor(/change\(s\)/);
      expect(screen).toContain("models[0].weight: 0.5 → 0.61");
      tmux.send("y");
      screen = await tmux.waitFor(/^saved$/m);
      const saved = JSON.parse(readFileSync(manifest, "utf8"));
      expect(saved).toEqual({ models: [{ path: "models/a.safetensors", weight: 0.61, index: 0 }, { path: "models/b.safetensors", weight: 0.5, index: 1 }], output: "out.safetensors" });
      tmux.send("q");
      screen = await tmux.waitFor(/EXIT=\d+/);
      expect(screen).toContain("EXIT=0");
      // The alternate screen was left: the editor's frame is gone from the shell's screen.
      expect(screen).not.toContain("s save  q quit");
    });
  }
});
