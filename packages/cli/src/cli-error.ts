import { StmergeError } from "@stmerge/core-tensors";

/** An error of the CLI itself (bad flag combination, a refused prompt), with its exit code. */
export class CliError extends StmergeError {
  readonly exitCode: number;
  constructor(code: string, message: string, options: { exitCode?: number; file?: string } = {}) {
    super(code, message, options.file === undefined ? {} : { file: options.file });
    this.exitCode = options.exitCode ?? 1;
  }
}

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  internal: 70,
} as const;

function isStmerge(error: unknown): error is StmergeError {
  return error instanceof Error && typeof (error as { code?: unknown }).code === "string" && /^[A-Z][A-Z0-9_]+$/.test((error as unknown as { code: string }).code);
}

/** Exit code and the one line a user sees for an error; the stack only with --debug. */
export function describeError(error: unknown, debug: boolean): { exitCode: number; text: string } {
  if (error instanceof CliError) return { exitCode: error.exitCode, text: `stmerge: ${error.message}${debug && error.stack ? `\n${error.stack}` : ""}` };
  if (isStmerge(error)) {
    const text = `stmerge: ${error.message} [${error.code}]`;
    return { exitCode: EXIT.failure, text: debug && error.stack ? `${text}\n${error.stack}` : text };
  }
  const e = error as NodeJS.ErrnoException;
  if (e && typeof e.code === "string" && typeof e.path === "string") {
    const text = `stmerge: ${e.path}: ${e.code === "ENOENT" ? "no such file or directory" : e.code === "EACCES" ? "permission denied" : e.code === "ENOSPC" ? "no space left on device" : e.message}`;
    return { exitCode: EXIT.failure, text: debug && e.stack ? `${text}\n${e.stack}` : text };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    exitCode: EXIT.internal,
    text: `stmerge: internal error: ${message.split("\n")[0]}${debug && error instanceof Error && error.stack ? `\n${error.stack}` : " (run with --debug for details)"}`,
  };
}
