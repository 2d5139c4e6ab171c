import { StmergeError } from "@stmerge/core-tensors";

/** A pickle stream that is malformed, exceeds a resource limit, or asks for something we refuse to do. */
export class PickleError extends StmergeError {}

/** A checkpoint container (zip, legacy stacked pickles, plain pickle) that is malformed or unsupported. */
export class CheckpointFormatError extends StmergeError {}

/** One global a pickle references that is not on the allowlist, and where it sits. */
export interface PickleViolation {
  readonly module: string;
  readonly name: string;
  readonly verdict: "unknown" | "dangerous";
  /** The opcode that brought it in or tried to call it (GLOBAL, STACK_GLOBAL, INST, REDUCE, EXT1, ...). */
  readonly opcode: string;
  /** Byte offset of that opcode inside the pickle record. */
  readonly offset: number;
  /** The pickle record inside the container, e.g. `archive/data.pkl` or `object pickle`. */
  readonly record: string;
  /** The dict key the refused object was stored under, when it was stored in a dict. */
  placedAt?: string;
}

export function describeViolation(v: PickleViolation): string {
  const where = `${v.record} at byte ${v.offset}${v.placedAt === undefined ? "" : `, under key ${JSON.stringify(v.placedAt)}`}`;
  return `${v.verdict} global ${v.module}.${v.name} (${v.opcode}, ${where})`;
}

/** The file asks for globals or calls outside the allowlist; nothing was executed. */
export class ForbiddenGlobalError extends PickleError {
  readonly violations: readonly PickleViolation[];
  constructor(file: string, violations: readonly PickleViolation[]) {
    const first = violations[0];
    const more = violations.length > 1 ? ` and ${violations.length - 1} more` : "";
    super("PICKLE_FORBIDDEN_GLOBAL", `${file}: refused, the pickle references ${first ? describeViolation(first) : "a forbidden global"}${more}`, {
      file,
      details: { violations },
    });
    this.violations = violations;
  }
}
