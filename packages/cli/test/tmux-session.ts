import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildTorchCheckpoint, type TorchTensorInput } from "@stmerge/test-utils";

/** Whether tmux is installed; terminal tests are skipped (and shown as skipped) without it. */
export const hasTmux = spawnSync("tmux", ["-V"]).status === 0;

export interface TmuxSession {
  /** The visible screen, as text. */
  capture(): string;
  /** Types `keys` literally. */
  send(keys: string): void;
  /** The first screen that matches `pattern`, polling every 100 ms; throws with the screen after `ms`. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  /** Every screen captured until one matches `pattern` (or `ms` passes), with when it was taken. */
  record(until: RegExp, options?: { ms?: number; everyMs?: number }): Promise<{ at: number; text: string }[]>;
  kill(): void;
}

/**
 * Runs a shell command line in a detached tmux session of the given size (a real pseudo-terminal).
 * The command's exit status is printed as `EXIT=<n>` and the pane stays open, so tests can read
 * the final screen.
 */
export function startTmuxSession(name: string, folder: string, commandLine: string, size: { columns: number; rows: number }): TmuxSession {
  const script = join(folder, `${name}.sh`);
  writeFileSync(script, `${commandLine}; echo "EXIT=$?"; sleep 600\n`);
  execFileSync("tmux", ["new-session", "-d", "-s", name, "-x", String(size.columns), "-y", String(size.rows), "sh", script]);
  const capture = (): string => execFileSync("tmux", ["capture-pane", "-p", "-t", name], { encoding: "utf8" });
  return {
    capture,
    send: (keys) => void execFileSync("tmux", ["send-keys", "-t", name, "-l", keys]),
    async waitFor(pattern, ms = 60_000) {
      const start = Date.now();
      for (;;) {
        const screen = capture();
        if (pattern.test(screen)) return screen;
        if (Date.now() - start > ms) throw new Error(`the terminal never showed ${pattern}; screen:\n${screen}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async record(until, options = {}) {
      const frames: { at: number; text: string }[] = [];
      const start = Date.now();
      for (;;) {
        const text = capture();
        frames.push({ at: Date.now(), text });
        if (until.test(text) || Date.now() - start > (options.ms ?? 240_000)) return frames;
        await new Promise((r) => setTimeout(r, options.everyMs ?? 100));
      }
    },
    kill: () => void spawnSync("tmux", ["kill-session", "-t", name]),
  };
}

/**
 * A large torch zip checkpoint written in seconds: `count` F32 tensors of 16 MiB sharing one
 * patterned buffer, so a conversion of it stays on screen long enough to be watched.
 */
export function writeBigTorchCheckpoint(path: string, count: number): void {
  const data = new Uint8Array(16 * 1024 * 1024);
  const f32 = new Float32Array(data.buffer);
  for (let i = 0; i < f32.length; i++) f32[i] = Math.sin(i) * 0.01;
  const tensors: TorchTensorInput[] = Array.from({ length: count }, (_, i) => ({ name: `model.layers.${i}.weight`, dtype: "F32", shape: [4096, 1024], data }));
  writeFileSync(path, buildTorchCheckpoint(tensors));
}
