import { boundErrorMessage, isStmergeError, StmergeError } from "@stmerge/core-tensors";
import { escapeControl } from "./terminal-text.js";

/** An error of the CLI itself (bad flag combination, a refused prompt), with its exit code. */
export class CliError extends StmergeError {
  readonly exitCode: number;
  constructor(code: string, message: string, options: { exitCode?: number; file?: string } = {}) {
    super(code, message, options.file === undefined ? {} : { file: options.file });
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Exit code a command action asks for (audit: 1 unsafe, 2 unreadable) without throwing an error. */
export class ExitRequest {
  constructor(readonly exitCode: number) {}
}

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  internal: 70,
} as const;

/** A --debug stack, line by line: messages inside it came from files too. */
const escapeStack = (stack: string) => stack.split("\n").map(escapeControl).join("\n");

/**
 * Exit code and the one line a user sees for an error; the stack only with --debug. Messages
 * carry file names, tensor names and server text, so their control characters are escaped, and
 * a long one loses its middle (boundErrorMessage; stmerge's own errors are made so already, the
 * CivitAI client's and Node's are not).
 */
export function describeError(error: unknown, debug: boolean): { exitCode: number; text: string } {
  const shown = (message: string) => escapeControl(boundErrorMessage(message));
  if (error instanceof CliError) return { exitCode: error.exitCode, text: `stmerge: ${shown(error.message)}${debug && error.stack ? `\n${escapeStack(error.stack)}` : ""}` };
  if (isStmergeError(error)) {
    const text = `stmerge: ${shown(error.message)} [${error.code}]`;
    return { exitCode: EXIT.failure, text: debug && error.stack ? `${text}\n${escapeStack(error.stack)}` : text };
  }
  const e = error as NodeJS.ErrnoException;
  if (e && typeof e.code === "string" && typeof e.path === "string") {
    const text = `stmerge: ${escapeControl(e.path)}: ${e.code === "ENOENT" ? "no such file or directory" : e.code === "EACCES" ? "permission denied" : e.code === "ENOSPC" ? "no space left on device" : shown(e.message)}`;
    return { exitCode: EXIT.failure, text: debug && e.stack ? `${text}\n${escapeStack(e.stack)}` : text };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    exitCode: EXIT.internal,
    text: `stmerge: internal error: ${shown(message.split("\n")[0] ?? "")}${debug && error instanceof Error && error.stack ? `\n${escapeStack(error.stack)}` : " (run with --debug for details)"}`,
  };
}

/** The `{"error": {...}}` object printed on stdout under --json (as well as the line on stderr). */
export function errorObject(error: unknown, text: string): { error: { code: string; message: string; file: string | null } } {
  const e = error as { code?: unknown; file?: unknown } | undefined;
  const code = isStmergeError(error) ? error.code : typeof e?.code === "string" && /^E[A-Z]+$/.test(e.code) ? e.code : "INTERNAL";
  const firstLine = text.split("\n")[0]!.replace(/^stmerge: /, "").replace(/ \[[A-Z0-9_]+\]$/, "");
  return { error: { code, message: firstLine, file: typeof e?.file === "string" ? e.file : null } };
}
