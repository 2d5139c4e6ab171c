import type { ArchitectureId } from "../models/architecture-signatures.js";
import type { ArchitectureReport } from "../models/detect-architecture.js";

/** Families of the labels scan and the Python tool write (SDXL derivatives are SDXL). */
const LABEL_FAMILIES: readonly { readonly pattern: RegExp; readonly architecture: ArchitectureId }[] = [
  { pattern: /^sdxlrefiner$/, architecture: "sdxl-refiner" },
  { pattern: /^(sdxl(10|09)?|xl|pony|ponyxl|pdxl|illustrious|illustriousxl|noob|noobai|noobaixl)$/, architecture: "sdxl" },
  { pattern: /^(sd1|sd15|sd14|sdv15)$/, architecture: "sd1" },
  { pattern: /^(sd2|sd20|sd21|sdv21)$/, architecture: "sd2" },
  { pattern: /^sd3(5)?$/, architecture: "sd3" },
  { pattern: /^flux(1|dev|schnell)?$/, architecture: "flux" },
];

/** The family an architecture label names, or undefined for a label we do not know ("custom", "Unknown"). */
export function architectureOfLabel(label: string): ArchitectureId | undefined {
  const key = label.toLowerCase().replace(/[^a-z0-9]/g, "");
  return LABEL_FAMILIES.find((f) => f.pattern.test(key))?.architecture;
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
