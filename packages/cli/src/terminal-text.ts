/**
 * Strings from files and servers (pickle global names, tensor and metadata names, file names,
 * CivitAI names and error bodies) are data: printed raw, a `\r`, an escape sequence or a bidi
 * override could repaint the screen (e.g. turn audit's UNSAFE line into CLEAN). `escapeControl`
 * makes every such character visible; every print site applies it to data before interpolating.
 */

// C0 controls, DEL, C1 controls (U+009B is CSI on some terminals), the line/paragraph separators,
// bidi embeddings/overrides/isolates and marks, and lone UTF-16 surrogates.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const NAMED: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\u001b": "\\e" };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named) return named;
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** One data string made safe for a terminal line: every control character written as a visible escape (`\e`, `\r`, `\x07`, `\u202e`). */
export function escapeControl(value: unknown): string {
  return String(value).replace(CONTROL, escapeOne);
}

// Our own output may hold newlines, tabs and CSI sequences (colours, from the theme); anything
// else that controls a terminal is escaped, so a print site that forgot `escapeControl` still
// cannot move the cursor, set the title or rewrite a line.
// eslint-disable-next-line no-control-regex
const OUTPUT_ALLOWED = /\n|\t|\u001b\[[0-9;?]*[A-Za-z]/y;

/** Last line of defence for whole chunks written by the CLI's own output helpers. */
export function confineToTerminal(text: string): string {
  CONTROL.lastIndex = 0;
  if (!CONTROL.test(text)) return text;
  let out = "";
  let i = 0;
  while (i < text.length) {
    OUTPUT_ALLOWED.lastIndex = i;
    const allowed = OUTPUT_ALLOWED.exec(text);
    if (allowed) {
      out += allowed[0];
      i += allowed[0].length;
      continue;
    }
    CONTROL.lastIndex = i;
    const bad = CONTROL.exec(text);
    if (!bad) return out + text.slice(i);
    if (bad.index > i) {
      out += text.slice(i, bad.index);
      i = bad.index;
      continue;
    }
    out += escapeOne(bad[0]);
    i += bad[0].length;
  }
  return out;
}
