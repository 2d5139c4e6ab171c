import { formatCrc32Civitai, HASH_ALGORITHMS, type FileHashes, type HashAlgorithm } from "@stmerge/cache";
import type { ConvertResult } from "@stmerge/merge-engine";

/**
 * What a convert output's hashing tap computes for the cache: every algorithm but CRC-32, which
 * convert gives itself (`ConvertResult.outputCrc32`, combined from the CRC-32 of each tensor it
 * takes as it writes) instead of another pass over the bytes on a hashing lane.
 */
export const CONVERT_TAP_ALGORITHMS: readonly HashAlgorithm[] = HASH_ALGORITHMS.filter((a) => a !== "crc32");

/** The tap's hashes completed with convert's CRC-32; undefined when the tap has none. */
export function withConvertCrc32(hashes: FileHashes | undefined, result: ConvertResult): FileHashes | undefined {
  return hashes ? { ...hashes, crc32: formatCrc32Civitai(result.outputCrc32) } : undefined;
}
