import { open } from "node:fs/promises";
import { isStmergeError } from "@stmerge/core-tensors";
import { loadCheckpointStructure, scanAsPickle, type CheckpointFormat } from "./load-checkpoint-structure.js";
import type { GlobalUse } from "./pickle-vm.js";

/** One distinct global of an audited file, with every place it occurs. */
export interface AuditedGlobal {
  readonly module: string;
  readonly name: string;
  readonly verdict: "allowed" | "unknown" | "dangerous";
  readonly occurrences: ReadonlyArray<{ readonly record: string; readonly offset: number; readonly opcode: string; readonly placedAt?: string }>;
}

export type AuditStatus = "clean" | "unsafe" | "unreadable";

export interface AuditReport {
  readonly file: string;
  /**
   * clean: only allowlisted globals; unsafe: any unknown or dangerous global, or a container that
   * readers could take apart in two ways (an ambiguous zip); unreadable: malformed and nothing unsafe seen.
   */
  readonly status: AuditStatus;
  readonly format: CheckpointFormat | undefined;
  readonly globals: readonly AuditedGlobal[];
  /** Why the file could not be read completely, when it could not. */
  readonly error: { readonly code: string; readonly message: string } | undefined;
}

/** Containers another reader (torch, a scanner) could see differently: what we scanned may not be what runs. */
const UNSAFE_ERROR_CODES = new Set(["ZIP_AMBIGUOUS"]);

function groupGlobals(uses: readonly GlobalUse[]): AuditedGlobal[] {
  const groups = new Map<string, { module: string; name: string; verdict: GlobalUse["verdict"]; occurrences: { record: string; offset: number; opcode: string; placedAt?: string }[] }>();
  for (const use of uses) {
    const key = `${use.module}\u0000${use.name}`;
    let group = groups.get(key);
    if (!group) {
      group = { module: use.module, name: use.name, verdict: use.verdict, occurrences: [] };
      groups.set(key, group);
    }
    group.occurrences.push({ record: use.record, offset: use.offset, opcode: use.opcode, ...(use.placedAt === undefined ? {} : { placedAt: use.placedAt }) });
  }
  const rank = { dangerous: 0, unknown: 1, allowed: 2 } as const;
  return [...groups.values()].sort((a, b) => rank[a.verdict] - rank[b.verdict] || `${a.module}.${a.name}`.localeCompare(`${b.module}.${b.name}`));
}

/**
 * Lists every global a checkpoint's pickles reference with its verdict, like picklescan but by
 * running the same non-executing VM the loader uses (so STACK_GLOBAL names built from the memo
 * are resolved too). Never throws for a bad file: the report says unreadable.
 */
export async function auditCheckpoint(path: string): Promise<AuditReport> {
  const uses: GlobalUse[] = [];
  let format: CheckpointFormat | undefined;
  let error: AuditReport["error"];
  try {
    const handle = await open(path, "r");
    try {
      const info = await handle.stat();
      try {
        const structure = await loadCheckpointStructure(handle, info.size, path, { globalsSink: uses });
        format = structure.format;
      } catch (e) {
        // torch.load runs pickle.load on anything that is not a zip or tar, so a file we refuse as
        // another format (a safetensors header, a GGUF) is still scanned as the pickle torch would run.
        if (isStmergeError(e) && e.code === "CHECKPOINT_UNSUPPORTED_FORMAT" && uses.length === 0) await scanAsPickle(handle, info.size, path, { globalsSink: uses });
        throw e;
      }
    } finally {
      await handle.close();
    }
  } catch (e) {
    const err = e as Error & { code?: unknown };
    error = { code: isStmergeError(e) ? e.code : typeof err.code === "string" ? err.code : "AUDIT_FAILED", message: isStmergeError(e) ? e.message : `${path}: ${err.message}` };
  }
  const globals = groupGlobals(uses);
  const unsafe = globals.some((g) => g.verdict !== "allowed") || (error !== undefined && UNSAFE_ERROR_CODES.has(error.code));
  return { file: path, status: unsafe ? "unsafe" : error ? "unreadable" : "clean", format, globals, error };
}
