import { SDXL_DERIVATIVE_HINTS } from "../models/architecture-signatures.js";
import type { ScanResult } from "./scan-folder.js";

/** What an identity store (the CLI passes the metadata cache) knows about a model file as it is now. */
export interface KnownModelIdentity {
  readonly sha256: string;
  readonly crc32?: string | null | undefined;
  /** The architecture the store names, e.g. from CivitAI's base model ("Pony", "Illustrious"). */
  readonly architecture?: string | null | undefined;
}

/** The Python tool's field order of a manifest model entry. */
const MODEL_FIELD_ORDER = ["path", "weight", "architecture", "index", "sha256", "crc32", "precision_detected"];

function inPythonOrder(e: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries([...MODEL_FIELD_ORDER.filter((k) => k in e).map((k) => [k, e[k]]), ...Object.entries(e).filter(([k]) => !MODEL_FIELD_ORDER.includes(k))]);
}

/**
 * The scan's manifest completed with what an identity store knows, which the keys cannot tell:
 * an SDXL model whose keys name no derivative takes the stored architecture when that names one
 * (an SDXL file CivitAI calls Pony), and a model without hashes takes the stored SHA-256 and
 * CRC32 (uppercase, as the Python tool writes it), since hashes computed earlier cost nothing.
 * `known` is asked once per model; the scan result itself is left as it is.
 */
export async function applyKnownIdentities(result: ScanResult, known: (path: string) => Promise<KnownModelIdentity | undefined>): Promise<Record<string, unknown>> {
  const entries = result.manifest.models as readonly Record<string, unknown>[];
  const models: Record<string, unknown>[] = [];
  for (const [i, m] of result.models.entries()) {
    let entry = { ...entries[i]! };
    const needsArchitecture = m.report.architecture === "sdxl" && !m.report.derivative;
    if (needsArchitecture || !entry.sha256) {
      const identity = await known(m.path);
      const stored = identity?.architecture;
      if (needsArchitecture && stored && SDXL_DERIVATIVE_HINTS.some((hint) => hint.pattern.test(stored))) entry.architecture = stored;
      if (identity && !entry.sha256) entry = inPythonOrder({ ...entry, sha256: identity.sha256, ...(identity.crc32 ? { crc32: identity.crc32.toUpperCase() } : {}) });
    }
    models.push(entry);
  }
  return { ...result.manifest, models };
}
