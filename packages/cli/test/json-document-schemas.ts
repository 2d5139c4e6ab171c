import { z } from "zod";

/**
 * The --json result documents of stmerge's commands (README "JSON documents"). Shared shapes:
 * a file is `{ path, sizeBytes, sha256 }`, timings are `{ totalMs, phases: [{ phase, elapsedMs, bytes }] }`.
 */
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const timings = z.object({ totalMs: z.number().int().nonnegative(), phases: z.array(z.object({ phase: z.string(), elapsedMs: z.number().nonnegative(), bytes: z.number().nonnegative() })) });
const outputFile = z.object({ path: z.string(), sizeBytes: z.number().int().positive(), sha256: sha256.nullable() });
/** A file a command read: its path, size and detected format. */
const inputFile = z.object({ path: z.string(), sizeBytes: z.number().int().positive(), format: z.string() });
const hashes = z.object({ sha256: sha256.nullable().optional(), autov1: z.string().nullable().optional(), autov2: z.string().nullable().optional(), autov3: z.string().nullable().optional(), crc32: z.string().nullable().optional(), blake3: z.string().nullable().optional() });

export const JSON_DOCUMENTS = {
  audit: z.object({ command: z.literal("audit"), exitCode: z.number().int(), reports: z.array(z.object({ path: z.string(), status: z.enum(["clean", "unsafe", "unreadable"]), globals: z.array(z.object({ module: z.string(), name: z.string(), verdict: z.string() })) })) }),
  convert: z.object({
    command: z.literal("convert"),
    input: z.object({ path: z.string(), format: z.string(), sha256, stateDict: z.string(), strippedPrefixes: z.number().int() }),
    output: outputFile.extend({ tensors: z.number().int(), precision: z.string() }),
    detected: z.object({ kind: z.string(), label: z.string(), evidence: z.array(z.string()) }),
    pruned: z.array(z.string()),
    verified: z.literal(true),
    timings,
  }),
  verify: z.object({ command: z.literal("verify"), original: inputFile, converted: inputFile, ok: z.boolean(), counts: z.record(z.string(), z.number().int()), timings }),
  scan: z.object({ command: z.literal("scan"), manifest: z.object({ path: z.string(), document: z.object({ models: z.array(z.object({ path: z.string() })) }) }), skipped: z.array(z.unknown()), warnings: z.array(z.string()), detection: z.array(z.object({ path: z.string() })), timings }),
  merge: z.object({
    command: z.literal("merge"),
    dryRun: z.boolean(),
    output: z.object({ path: z.string(), sizeBytes: z.number().int().positive(), sha256: sha256.nullable(), precision: z.string() }),
    method: z.string(),
    architecture: z.string(),
    models: z.array(z.object({ index: z.number().int(), path: z.string(), weight: z.number(), sha256: sha256.nullable(), architecture: z.string() })),
    tensors: z.number().int(),
    estimatedPeakBytes: z.number().int(),
    warnings: z.array(z.string()),
    timings: timings.optional(),
    // merge --from: the merged file reproduced and where each input (by SHA-256) was found.
    from: z
      .object({
        path: z.string(),
        recipeMethod: z.string(),
        hashedWhileSearching: z.number().int().nonnegative(),
        inputs: z.array(z.object({ index: z.number().int(), role: z.enum(["model", "vae"]), sha256, name: z.string(), path: z.string(), foundBy: z.enum(["cache", "search"]) })),
      })
      .optional(),
  }),
  inspect: z.object({ command: z.literal("inspect"), path: z.string(), sizeBytes: z.number().int().positive(), headerBytes: z.number().int(), tensorCount: z.number().int(), parameterCount: z.number().int(), dtypes: z.record(z.string(), z.number().int()), metadata: z.record(z.string(), z.string()) }),
  hash: z.object({ command: z.literal("hash"), files: z.array(z.object({ path: z.string(), sizeBytes: z.number().int(), hashes, cached: z.boolean() })), timings }),
  "extract-vae": z.object({ command: z.literal("extract-vae"), input: z.object({ path: z.string() }), output: z.object({ path: z.string(), sizeBytes: z.number().int().positive(), tensors: z.number().int().positive() }), tensorBytes: z.number().int(), timings }),
  "cache list": z.array(z.object({ filename: z.string(), sha256, sizeBytes: z.number().int(), lastModified: z.string(), cachedAt: z.string() })),
  "cache info": z.object({ location: z.string(), entries: z.number().int(), sizeBytes: z.number().int() }),
} as const;

/**
 * Fields whose keys are data, not names (tensor metadata, method parameters, the manifest file
 * as written, dtype and status counts, hash algorithm names): their keys are exempt from the
 * camelCase rule; everything else in a document is camelCase.
 */
const DATA_MAPS = new Set(["metadata", "params", "document", "dtypes", "actions", "counts", "hashes", "blocks", "architecture"]);

/** Every key outside the data maps that is not camelCase, as JSON paths. */
export function nonCamelKeys(value: unknown, path = "$"): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => nonCamelKeys(v, `${path}[${i}]`));
  if (value === null || typeof value !== "object") return [];
  const bad: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (!/^[a-z][a-zA-Z0-9]*$/.test(k)) bad.push(`${path}.${k}`);
    if (!DATA_MAPS.has(k)) bad.push(...nonCamelKeys(v, `${path}.${k}`));
  }
  return bad;
}
