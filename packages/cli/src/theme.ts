import picocolors from "picocolors";

type Style = (text: string) => string;

/** Characters that have an ASCII stand-in for terminals without Unicode (TERM=dumb/linux, STMERGE_ASCII=1). */
interface Glyphs {
  readonly barFull: string;
  readonly barEmpty: string;
  readonly ok: string;
  readonly fail: string;
  readonly warn: string;
  readonly arrow: string;
  readonly spinner: readonly string[];
  /** Box corners and edges: top-left, top-right, bottom-left, bottom-right, horizontal, vertical. */
  readonly box: readonly [string, string, string, string, string, string];
}

/** Colour by meaning; every style is the identity when colour is off. */
export interface Theme {
  readonly color: boolean;
  readonly unicode: boolean;
  readonly glyphs: Glyphs;
  readonly success: Style;
  readonly warning: Style;
  readonly error: Style;
  /** File paths. */
  readonly path: Style;
  /** Hashes and other identifiers. */
  readonly hash: Style;
  readonly number: Style;
  readonly dim: Style;
  readonly label: Style;
}

const UNICODE_GLYPHS: Glyphs = {
  barFull: "█",
  barEmpty: "░",
  ok: "✔",
  fail: "✖",
  warn: "▲",
  arrow: "→",
  spinner: ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"],
  box: ["╭", "╮", "╰", "╯", "─", "│"],
};

const ASCII_GLYPHS: Glyphs = {
  barFull: "#",
  barEmpty: "-",
  ok: "ok",
  fail: "x",
  warn: "!",
  arrow: "->",
  spinner: ["|", "/", "-", "\\"],
  box: ["+", "+", "+", "+", "-", "|"],
};

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Whether to colour: `--no-color` and a non-empty NO_COLOR (no-color.org) turn it off,
 * FORCE_COLOR (other than 0/false) turns it on even in pipes, TERM=dumb turns it off,
 * otherwise colour follows whether the stream is a terminal.
 */
export function resolveColor(env: Env, colorFlag: boolean, isTTY: boolean): boolean {
  if (!colorFlag) return false;
  if (env.NO_COLOR) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== "0" && force !== "false") return true;
  if (env.TERM === "dumb") return false;
  return isTTY;
}

/** Unicode box and bar characters unless the terminal is known not to draw them. */
export function resolveUnicode(env: Env): boolean {
  if (env.STMERGE_ASCII === "1") return false;
  return env.TERM !== "dumb" && env.TERM !== "linux";
}

export function createTheme(options: { color: boolean; unicode: boolean }): Theme {
  const c = picocolors.createColors(options.color);
  return {
    color: options.color,
    unicode: options.unicode,
    glyphs: options.unicode ? UNICODE_GLYPHS : ASCII_GLYPHS,
    success: c.green,
    warning: c.yellow,
    error: c.red,
    path: c.cyan,
    hash: c.dim,
    number: c.bold,
    dim: c.dim,
    label: c.bold,
  };
}

/** A theme without colour and with ASCII glyphs; libraries' tests and plain captures use it. */
export const PLAIN_THEME: Theme = createTheme({ color: false, unicode: false });

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Visible length of text that may carry colour codes (all glyphs we draw are one column wide). */
export function visibleLength(text: string): number {
  return [...text.replace(ANSI, "")].length;
}
