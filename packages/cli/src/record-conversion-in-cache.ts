import type { CacheRecorder, FileHashes } from "@stmerge/cache";
import type { ConvertResult } from "@stmerge/merge-engine";
import { openCliCache, recordOutputInCache, type CacheFlags } from "./cli-cache.js";
import type { CliIo } from "./cli-io.js";

/**
 * Records a conversion (convert and convert-batch): the input's SHA-256 under the size and mtime
 * it was hashed for (`inputHashedAs`), so an input changed since looks stale instead of fresh with
 * the old hash; an input whose SHA-256 came from the cache is there already. Then the output, with
 * the source's data. Through `recorder` when given (the batch's), else one of its own, flushed.
 */
export async function recordConversionInCache(
  result: ConvertResult,
  io: CliIo,
  options: CacheFlags & { outputHashes?: FileHashes; warn: (text: string) => void; recorder?: CacheRecorder },
): Promise<void> {
  const recorder = options.recorder ?? (await openCliCache(io, options, options.warn).recorder());
  if (result.inputHashedAs) await recorder.record(result.input, { hashes: { sha256: result.inputSha256 }, hashedAs: result.inputHashedAs });
  // Written before the output is recorded, which may go through the cache itself (no output hashes) and looks the source up there.
  if (!options.recorder) await recorder.flush();
  const { outputHashes, ...flags } = options;
  await recordOutputInCache(result.output, io, { ...flags, source: result.input, ...(outputHashes ? { hashes: outputHashes } : {}), extra: { architecture: result.detected.label }, recorder });
  if (!options.recorder) await recorder.flush();
}
