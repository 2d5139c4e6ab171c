import { decodeToF32, isFloatDType, throwIfAborted, type DType, type ProgressCallback, type TensorDescriptor } from "@stmerge/core-tensors";
import { detectFileFormat, type FileFormatReport } from "./detect-file-format.js";
import { openStateDict, type ModelFileFormat } from "./open-state-dict.js";
import { isPrunableKey } from "./prune-rules.js";

export type TensorCheckStatus = "identical" | "within-tolerance" | "pruned" | "mismatch" | "missing" | "extra";

export interface TensorCheck {
  readonly name: string;
  readonly status: TensorCheckStatus;
  readonly detail?: string;
}

export interface ConversionReport {
  readonly original: string;
  readonly converted: string;
  readonly originalFormat: ModelFileFormat;
  readonly convertedFormat: ModelFileFormat;
  readonly detected: FileFormatReport;
  /** True when every tensor of the converted file matches and every missing one was prunable. */
  readonly ok: boolean;
  readonly counts: Readonly<Record<TensorCheckStatus, number>>;
  readonly tensors: readonly TensorCheck[];
}

export interface VerifyConversionOptions {
  readonly onProgress?: ProgressCallback;
  /** Called for each tensor as it is checked (the CLI's --verbose). */
  readonly onTensor?: (check: TensorCheck) => void;
  /** Aborts between tensors. */
  readonly signal?: AbortSignal;
}

/** Mantissa bits of a float dtype: a cast to it may move a value by one unit in the last place. */
const MANTISSA_BITS: Partial<Record<DType, number>> = { F64: 52, F32: 23, F16: 10, BF16: 7, F8_E4M3: 3, F8_E5M2: 2 };
/** Smallest positive subnormal, the absolute floor of the tolerance. */
const SMALLEST: Partial<Record<DType, number>> = { F64: 0, F32: 1.4e-45, F16: 2 ** -24, BF16: 9.2e-41, F8_E4M3: 2 ** -9, F8_E5M2: 2 ** -16 };
const MAX_FINITE: Partial<Record<DType, number>> = { F16: 65504, BF16: 3.3895e38, F32: 3.4028234663852886e38, F8_E4M3: 448, F8_E5M2: 57344 };

/** Compares two float tensors of different precision: each value within one ulp of the coarser dtype. */
function compareWithinCast(a: Float32Array, b: Float32Array, coarser: DType): string | undefined {
  const rel = 2 ** -(MANTISSA_BITS[coarser] ?? 23);
  const floor = SMALLEST[coarser] ?? 0;
  const max = MAX_FINITE[coarser] ?? Infinity;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue;
    // Values beyond the coarser dtype's range become ±inf (or saturate) when cast.
    if (Math.abs(x) > max && (!Number.isFinite(y) || Math.abs(y) >= max) && Math.sign(x) === Math.sign(y)) continue;
    if (Math.abs(x - y) <= Math.max(Math.abs(x), Math.abs(y)) * rel + floor) continue;
    return `element ${i}: ${x} vs ${y}`;
  }
  return undefined;
}

function coarserOf(a: DType, b: DType): DType {
  return (MANTISSA_BITS[a] ?? 0) <= (MANTISSA_BITS[b] ?? 0) ? a : b;
}

/**
 * Checks a converted file against its original, tensor by tensor: same key set (keys missing
 * from the conversion must be ones convert prunes; `module.` prefixes and state-dict wrappers are
 * resolved the same way convert resolves them), same shapes, bytes identical for equal dtypes and
 * within one ulp of the coarser dtype after a precision change. Torch files are read with
 * safe-pickle, never executed.
 */
export async function verifyConversion(original: string, converted: string, options: VerifyConversionOptions = {}): Promise<ConversionReport> {
  const a = await openStateDict(original);
  try {
    const b = await openStateDict(converted);
    try {
      const detected = detectFileFormat(a.source.descriptors, { wrapperPath: a.wrapperPath });
      const checks: TensorCheck[] = [];
      const record = (check: TensorCheck): void => {
        checks.push(check);
        options.onTensor?.(check);
      };
      const total = b.source.descriptors.reduce((n, d) => n + d.byteLength, 0);
      let done = 0;
      let bufA = new Uint8Array(0);
      let bufB = new Uint8Array(0);
      for (const da of a.source.descriptors) {
        const db = b.source.get(da.name);
        if (!db) {
          record(isPrunableKey(da.name, detected.kind) ? { name: da.name, status: "pruned" } : { name: da.name, status: "missing", detail: "not in the converted file" });
          continue;
        }
        throwIfAborted(options.signal, converted, "verification");
        if (bufA.length < da.byteLength) bufA = new Uint8Array(da.byteLength);
        if (bufB.length < db.byteLength) bufB = new Uint8Array(db.byteLength);
        record(await compareTensor(da, db, await a.source.read(da.name, bufA), await b.source.read(db.name, bufB)));
        done += db.byteLength;
        options.onProgress?.({ phase: "verify", bytesDone: done, bytesTotal: total, tensor: da.name });
      }
      for (const db of b.source.descriptors) if (!a.source.get(db.name)) record({ name: db.name, status: "extra", detail: "not in the original" });
      const counts: Record<TensorCheckStatus, number> = { identical: 0, "within-tolerance": 0, pruned: 0, mismatch: 0, missing: 0, extra: 0 };
      for (const c of checks) counts[c.status]++;
      const ok = counts.mismatch === 0 && counts.missing === 0 && counts.extra === 0;
      return { original, converted, originalFormat: a.fileFormat, convertedFormat: b.fileFormat, detected, ok, counts, tensors: checks };
    } finally {
      await b.close();
    }
  } finally {
    await a.close();
  }
}

async function compareTensor(da: TensorDescriptor, db: TensorDescriptor, bytesA: Uint8Array, bytesB: Uint8Array): Promise<TensorCheck> {
  const name = da.name;
  if (JSON.stringify(da.shape) !== JSON.stringify(db.shape)) return { name, status: "mismatch", detail: `shape ${JSON.stringify(da.shape)} vs ${JSON.stringify(db.shape)}` };
  if (da.dtype === db.dtype) {
    if (Buffer.compare(bytesA, bytesB) === 0) return { name, status: "identical" };
    return { name, status: "mismatch", detail: "values differ" };
  }
  if (!isFloatDType(da.dtype) || !isFloatDType(db.dtype)) return { name, status: "mismatch", detail: `dtype ${da.dtype} vs ${db.dtype}` };
  const problem = compareWithinCast(decodeToF32(bytesA, da.dtype), decodeToF32(bytesB, db.dtype), coarserOf(da.dtype, db.dtype));
  return problem ? { name, status: "mismatch", detail: `${da.dtype}→${db.dtype} beyond cast tolerance at ${problem}` } : { name, status: "within-tolerance", detail: `${da.dtype}→${db.dtype}` };
}
