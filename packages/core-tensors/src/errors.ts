/**
 * Every failure a library of stmerge reports is a `StmergeError` with a stable `code`,
 * the file it concerns (when there is one) and a one-line message a user can act on.
 * The CLI maps codes to exit codes and prints stacks only with `--debug`.
 */
export class StmergeError extends Error {
  readonly code: string;
  readonly file: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, options: { file?: string; cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.file = options.file;
    this.details = options.details;
  }
}

/** Errors of the safetensors format: a malformed or inconsistent file. */
export class SafetensorsError extends StmergeError {}

/** I/O failures: missing files, refused overwrites, short reads. */
export class TensorIoError extends StmergeError {}

/** Invalid arguments to a kernel or conversion (dtype not convertible, length mismatch). */
export class KernelError extends StmergeError {}

/**
 * Duck-typed so errors of another bundled copy and the CivitAI client's (same `code`/`file` shape)
 * count; the `file` property is what tells them from Node's errno errors, which the CLI maps itself.
 */
export function isStmergeError(value: unknown): value is StmergeError {
  return value instanceof Error && typeof (value as { code?: unknown }).code === "string" && (value as StmergeError).code.length > 0 && "file" in value;
}
