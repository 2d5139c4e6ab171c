import type { Command } from "commander";
import type { CliIo } from "./cli-io.js";
import { createProgressRenderer, type ProgressRenderer } from "./progress-renderer.js";
import { confineToTerminal, escapeControl } from "./terminal-text.js";
import { createTheme, resolveColor, resolveUnicode, visibleLength, type Theme } from "./theme.js";
import { CLI_VERSION } from "./version.js";

interface GlobalFlags {
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
  /** Colours and glyphs for stdout (the summary); stderr has its own, as either may be piped. */
  readonly theme: Theme;
  /** Width for summaries on stdout: the terminal's (80 when it does not say), unlimited when piped. */
  readonly columns: number;
  /** The startup banner (version, compute backend and why, cache and CivitAI status) on stderr. */
  banner(lines: readonly string[]): void;
}

export interface CliContext {
  readonly io: CliIo;
  readonly version: string;
  /** Aborted on Ctrl+C, SIGTERM or SIGHUP: pass it to every long library operation (`signal` option). */
  readonly signal: AbortSignal;
  output(command: Command): CommandOutput;
}

export function createCliContext(io: CliIo, signal: AbortSignal = new AbortController().signal): CliContext {
  return {
    io,
    signal,
    version: CLI_VERSION,
    output(command) {
      const opts = command.optsWithGlobals() as { json?: boolean; quiet?: boolean; debug?: boolean; color?: boolean };
      const json = Boolean(opts.json);
      const quiet = Boolean(opts.quiet);
      const debug = Boolean(opts.debug);
      const unicode = resolveUnicode(io.env);
      const theme = createTheme({ color: resolveColor(io.env, opts.color !== false, Boolean(io.stdout.isTTY)), unicode });
      const errTheme = createTheme({ color: resolveColor(io.env, opts.color !== false, Boolean(io.stderr.isTTY)), unicode });
      const color = errTheme.color;
      const mode = quiet ? "none" : json ? "json" : io.stderr.isTTY && io.env.TERM !== "dumb" ? "tty" : "plain";
      const progress = createProgressRenderer(io, mode, { theme: errTheme, ...(io.clock ? { now: io.clock.now, schedule: io.clock.schedule } : {}) });
      // The interrupt line must start on a clean line, not after a half-drawn bar, and no bar may
      // be drawn over it while the library winds down.
      signal.addEventListener("abort", () => progress.stop(), { once: true });
      return {
        json,
        quiet,
        debug,
        color,
        progress,
        theme,
        // Piped output is not wrapped (a path stays whole for grep and copy).
        columns: io.stdout.isTTY ? io.stdout.columns || 80 : Number.MAX_SAFE_INTEGER,
        // Commands escape data at each print site (escapeControl); confineToTerminal is the
        // backstop: only newlines, tabs and colour sequences of our own reach the terminal.
        line(text = "") {
          if (!json) io.stdout.write(`${confineToTerminal(text)}\n`);
        },
        text(text) {
          if (!json) io.stdout.write(confineToTerminal(text));
        },
        note(text) {
          if (!json && !quiet) {
            progress.done();
            io.stderr.write(`${confineToTerminal(text)}\n`);
          }
        },
        // A warning is one line, usually naming a file or a key: all of it is escaped.
        warn(text) {
          progress.done();
          io.stderr.write(json ? `${JSON.stringify({ type: "warning", message: text })}\n` : `${errTheme.warning("warning:")} ${escapeControl(text)}\n`);
        },
        result(value) {
          if (json) io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
        },
        banner(lines) {
          // STMERGE_NO_BANNER: set by `stmerge demo` for its steps, which share one banner.
          if (json || quiet || io.env.STMERGE_NO_BANNER) return;
          io.stderr.write(confineToTerminal(bannerText([`stmerge ${CLI_VERSION}`, ...lines], errTheme)));
        },
      };
    },
  };
}

/** Banner width: it fits an 80-column terminal; parts are packed onto lines and long ones shortened. */
const BANNER_COLUMNS = 80;

/** The banner's parts packed into lines of at most 80 columns, joined by " · ". */
export function bannerText(parts: readonly string[], theme: Theme): string {
  const sep = " · ";
  const lines: string[] = [];
  let current = "";
  for (const raw of parts) {
    const part = raw.length > BANNER_COLUMNS - 3 ? `${raw.slice(0, BANNER_COLUMNS - 4)}…` : raw;
    if (current && visibleLength(current) + sep.length + part.length > BANNER_COLUMNS - 1) {
      lines.push(current);
      current = `  ${part}`;
    } else current = current ? `${current}${sep}${part}` : part;
  }
  if (current) lines.push(current);
  const [head = "", ...rest] = lines;
  const cut = head.includes(sep) ? head.indexOf(sep) : head.length;
  return [theme.label(head.slice(0, cut)) + head.slice(cut), ...rest.map(theme.dim)].join("\n") + "\n";
}
