import type { KernelBackendSelection } from "@stmerge/core-tensors";
import { cacheBannerLines, type CacheFlags } from "./cli-cache.js";
import type { CliIo } from "./cli-io.js";

export interface BannerParts {
  /** The kernel backend a command computes with; its `reason` says which and why. */
  readonly compute?: KernelBackendSelection;
  /** Cache flags of the command; `false` leaves cache and CivitAI status out. */
  readonly cache?: CacheFlags | false;
}

/**
 * The startup banner's parts after the version: compute backend and why, metadata cache
 * entries, CivitAI mode. Rendered by `CommandOutput.banner` on stderr.
 */
export async function bannerLines(io: CliIo, parts: BannerParts, warn: (text: string) => void = () => undefined): Promise<string[]> {
  const lines: string[] = [];
  if (parts.compute) lines.push(`compute ${shorten(parts.compute.reason, 110)}`);
  if (parts.cache !== false) lines.push(...(await cacheBannerLines(io, parts.cache ?? {}, warn)));
  return lines;
}

/** Load errors of native modules quote long paths; the banner keeps one readable line. */
function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 2)}…)` : text;
}
