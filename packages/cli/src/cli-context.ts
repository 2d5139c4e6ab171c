import type { Command } from "commander";
import type { CliIo } from "./cli-io.js";
import { createProgressRenderer, type ProgressRenderer } from "./progress-renderer.js";
import { CLI_VERSION } from "./version.js";

export interface GlobalFlags {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly debug: boolean;
  readonly color: boolean;
}

/** Per-invocation output helpers for a command: stdout carries data, stderr carries everything else. */
export interface CommandOutput extends GlobalFlags {
  /** A line of the command's human output (stdout); nothing with --json. */
  line(text?: string): void;
  /** Raw text to stdout (tables); nothing with --json. */
  text(text: string): void;
  /** An informational note on stderr; nothing with --quiet or --json. */
  note(text: string): void;
  /** A warning on stderr (a JSON line with --json); shown even with --quiet. */
  warn(text: string): void;
  /** The command's result as JSON on stdout, only with --json. */
  result(value: unknown): void;
  readonly progress: ProgressRenderer;
  /** The startup banner (version, compute backend and why, cache and CivitAI status) on stderr. */
  banner(lines: readonly string[]): void;
}

export interface CliContext {
  readonly io: CliIo;
  readonly version: string;
  output(command: Command): CommandOutput;
}

export function createCliContext(io: CliIo): CliContext {
  return {
    io,
    version: CLI_VERSION,
    output(command) {
      const opts = command.optsWithGlobals() as { json?: boolean; quiet?: boolean; debug?: boolean; color?: boolean };
      const json = Boolean(opts.json);
      const quiet = Boolean(opts.quiet);
      const debug = Boolean(opts.debug);
      const color = opts.color !== false && !io.env.NO_COLOR && Boolean(io.stderr.isTTY);
      const mode = quiet ? "none" : json ? "json" : io.stderr.isTTY ? "tty" : "plain";
      const progress = createProgressRenderer(io, mode);
      return {
        json,
        quiet,
        debug,
        color,
        progress,
        line(text = "") {
          if (!json) io.stdout.write(`${text}\n`);
        },
        text(text) {
          if (!json) io.stdout.write(text);
        },
        note(text) {
          if (!json && !quiet) {
            progress.done();
            io.stderr.write(`${text}\n`);
          }
        },
        warn(text) {
          progress.done();
          io.stderr.write(json ? `${JSON.stringify({ type: "warning", message: text })}\n` : `warning: ${text}\n`);
        },
        result(value) {
          if (json) io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
        },
        banner(lines) {
          // STMERGE_NO_BANNER: set by `stmerge demo` for its steps, which share one banner.
          if (json || quiet || io.env.STMERGE_NO_BANNER) return;
          io.stderr.write(`stmerge ${CLI_VERSION}${lines.length ? ` · ${lines.join(" · ")}` : ""}\n`);
        },
      };
    },
  };
}
