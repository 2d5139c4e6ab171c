/**
 * Failures of the CivitAI client, each with a stable `code`. This package depends on no sibling,
 * so it carries the same shape as stmerge's errors (`code`, `file`, one-line message) and the CLI
 * maps it like any other. Messages never contain the API key.
 */
export type CivitaiErrorCode =
  | "CIVITAI_BAD_REQUEST"
  | "CIVITAI_UNAUTHORIZED"
  | "CIVITAI_RATE_LIMITED"
  | "CIVITAI_SERVER_ERROR"
  | "CIVITAI_NETWORK"
  | "CIVITAI_TIMEOUT"
  | "CIVITAI_BAD_RESPONSE"
  | "CIVITAI_HTTP_ERROR"
  | "CIVITAI_INVALID_ARGUMENT";

export class CivitaiError extends Error {
  readonly code: CivitaiErrorCode;
  /** Always undefined: a CivitAI failure concerns a URL, not a file. */
  readonly file: string | undefined = undefined;
  readonly status: number | undefined;
  /** The request URL (never holds credentials). */
  readonly url: string | undefined;
  /** Whether trying again later may succeed (rate limits, outages, challenge pages). */
  readonly transient: boolean;

  constructor(code: CivitaiErrorCode, message: string, options: { status?: number; url?: string; transient?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CivitaiError";
    this.code = code;
    this.status = options.status;
    this.url = options.url;
    this.transient = options.transient ?? false;
  }
}
