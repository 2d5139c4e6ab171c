import type { ArchitectureId } from "../models/architecture-signatures.js";
import { ARCHITECTURE_LABEL_FAMILIES } from "../models/architecture-label-families.js";
import type { ArchitectureReport } from "../models/detect-architecture.js";

/** The family an architecture label names, or undefined for a label we do not know ("custom", "Unknown"). */
export function architectureOfLabel(label: string): ArchitectureId | undefined {
  const key = label.toLowerCase().replace(/[^a-z0-9]/g, "");
  return ARCHITECTURE_LABEL_FAMILIES.find((f) => f.pattern.test(key))?.architecture;
}

/**
 * A warning when a manifest's informational `architecture` names another family than the
 * tensors show (the Python tool guessed it from the file name), e.g. "Illustrious" on an SD1.5
 * file; the merge follows the tensors.
 */
export function declaredArchitectureWarning(path: string, declared: string | undefined, detected: ArchitectureReport): string | undefined {
  if (!declared || detected.architecture === "unknown") return undefined;
  const family = architectureOfLabel(declared);
  if (family === undefined || family === detected.architecture) return undefined;
  return `${path}: the manifest says ${declared}, but its tensors are ${detected.label}${detected.evidence[0] ? ` (${detected.evidence[0]})` : ""}; merging it as ${detected.label}`;
}
