import { stat } from "node:fs/promises";
import { findLeftoverTempFiles } from "@stmerge/core-tensors";
import type { CommandOutput } from "./cli-context.js";
import { formatBytes } from "./format.js";

const shellQuote = (path: string): string => `'${path.replace(/'/g, "'\\''")}'`;

/**
 * Before writing `output`, names the hidden temp files (`.<name>.<hex>.tmp`) an earlier run left
 * beside it when it could not clean up (power loss, kill -9), with their size and the command
 * that removes them. stmerge never reuses or deletes them on its own: one might belong to
 * another stmerge writing the same file right now.
 */
export async function warnLeftoverTemps(output: string, out: Pick<CommandOutput, "warn">): Promise<readonly string[]> {
  const found = await findLeftoverTempFiles(output);
  if (found.length === 0) return found;
  let bytes = 0;
  for (const path of found) bytes += (await stat(path).catch(() => undefined))?.size ?? 0;
  const what = found.length === 1 ? "a temp file" : `${found.length} temp files`;
  out.warn(`${what} (${formatBytes(bytes)}) left beside ${output} by an earlier run that did not finish; unless another stmerge is writing it now, remove with: rm ${found.map(shellQuote).join(" ")}`);
  return found;
}
