import type { ProgressCallback, ProgressEvent } from "@stmerge/core-tensors";
import type { CliIo } from "./cli-io.js";
import { formatBytes } from "./format.js";

export type ProgressMode = "tty" | "plain" | "json" | "none";

const PLAIN_INTERVAL_MS = 5000;

export interface ProgressRenderer {
  readonly onProgress: ProgressCallback;
  /** Clears the bar line (TTY) so the next output starts on a clean line. */
  done(): void;
}

/**
 * Draws library progress events: a redrawn bar on a TTY, a line every ~10% otherwise,
 * JSON lines with --json, nothing with --quiet. Always on stderr, so stdout stays data.
 */
export function createProgressRenderer(io: CliIo, mode: ProgressMode): ProgressRenderer {
  const stream = io.stderr;
  let lastPhase = "";
  let lastPlainLine = 0;
  let finishedPhase = "";
  let lastDraw = 0;
  let drawn = false;
  const onProgress = (event: ProgressEvent): void => {
    if (mode === "none") return;
    if (mode === "json") {
      stream.write(JSON.stringify({ type: "progress", ...event }) + "\n");
      return;
    }
    const fraction = event.bytesTotal > 0 ? Math.min(1, event.bytesDone / event.bytesTotal) : 0;
    if (mode === "plain") {
      // Logs and CI: a line when a phase completes, and one every few seconds on long phases.
      const now = Date.now();
      if (event.phase !== lastPhase) {
        lastPhase = event.phase;
        lastPlainLine = now;
      }
      const finished = event.bytesTotal > 0 && event.bytesDone >= event.bytesTotal;
      if (finished ? finishedPhase === event.phase : now - lastPlainLine < PLAIN_INTERVAL_MS) return;
      if (finished) finishedPhase = event.phase;
      lastPlainLine = now;
      stream.write(`${event.phase}: ${finished ? "done" : `${Math.round(fraction * 100)}%`} (${formatBytes(event.bytesDone)} of ${formatBytes(event.bytesTotal)})${event.detail ? ` ${event.detail}` : ""}\n`);
      return;
    }
    const now = Date.now();
    if (now - lastDraw < 80 && fraction < 1) return;
    lastDraw = now;
    const columns = stream.columns ?? 80;
    const width = Math.max(10, Math.min(40, columns - 50));
    const filled = Math.round(fraction * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const label = `${event.phase} ${bar} ${String(Math.round(fraction * 100)).padStart(3)}% ${formatBytes(event.bytesDone)}/${formatBytes(event.bytesTotal)}${event.detail ? ` ${event.detail}` : ""}`;
    stream.write(`\r\x1b[2K${label.slice(0, columns - 1)}`);
    drawn = true;
  };
  return {
    onProgress,
    done() {
      if (drawn) stream.write("\r\x1b[2K");
      drawn = false;
    },
  };
}
