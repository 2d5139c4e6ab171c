import { TensorIoError } from "./errors.js";

/**
 * Long operations take an optional `AbortSignal` (the CLI aborts it on Ctrl+C, SIGTERM, SIGHUP)
 * and call this between tensors or chunks; the error unwinds through the operation's own cleanup
 * (sinks abort, temp files are removed).
 */
export function throwIfAborted(signal: AbortSignal | undefined, file: string, what: string): void {
  if (signal?.aborted) throw new TensorIoError("ABORTED", `${file}: ${what} interrupted`, { file });
}
