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
    super(boundErrorMessage(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.file = options.file;
    this.details = options.details;
  }
}

/** The longest error message kept whole. */
const MESSAGE_MAX = 1000;

/**
 * `message`, or where it is longer than MESSAGE_MAX characters its start and end with the middle
 * left out: messages quote tensor names, keys and text that a file chooses (a 1 MB tensor name
 * made a 1 MB error line), and the file comes first and the problem last.
 */
export function boundErrorMessage(message: string): string {
  if (message.length <= MESSAGE_MAX) return message;
  // Cut between UTF-16 surrogates' pairs, never inside one.
  const at = (i: number) => (/[\uDC00-\uDFFF]/.test(message[i] ?? "") ? i - 1 : i);
  const head = at(600);
  const tail = at(message.length - 300);
  return `${message.slice(0, head)}… (${tail - head} characters left out) …${message.slice(tail)}`;
}

/** Errors of the safetensors format: a malformed or inconsistent file. */
export class SafetensorsError extends StmergeError {}

/** I/O failures: missing files, refused overwrites, short reads. */
export class TensorIoError extends StmergeError {}

/** Invalid arguments to a kernel or conversion (dtype not convertible, length mismatch). */
export class KernelError extends StmergeError {}

/**
 * The KernelError for an output dtype that cannot be encoded. The value is shown briefly: a caller
 * who passed arguments out of place may have put a whole tensor there, and the message is one line.
 */
export function dtypeNotEncodable(op: string, value: unknown): KernelError {
  return new KernelError("DTYPE_NOT_ENCODABLE", `${op}: ${briefly(value)} is not a float dtype`);
}

/** A caller's argument in a message: a short string as it is, anything else by its kind and size. */
export function briefly(value: unknown): string {
  if (typeof value === "string") return value.length <= 32 ? value : `${value.slice(0, 32)}…`;
  const length = (value as { length?: unknown } | null | undefined)?.length;
  if (typeof length === "number") return `${Array.isArray(value) ? "an array" : `a ${(value as object).constructor?.name ?? "list"}`} of ${length} elements`;
  if (value === null || value === undefined) return String(value);
  const kind = typeof value;
  return `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind}`;
}

/**
 * Duck-typed so errors of another bundled copy and the CivitAI client's (same `code`/`file` shape)
 * count; the `file` property is what tells them from Node's errno errors, which the CLI maps itself.
 */
export function isStmergeError(value: unknown): value is StmergeError {
  return value instanceof Error && typeof (value as { code?: unknown }).code === "string" && (value as StmergeError).code.length > 0 && "file" in value;
}
