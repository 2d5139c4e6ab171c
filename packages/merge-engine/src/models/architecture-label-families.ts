import type { ArchitectureId } from "./architecture-signatures.js";

/**
 * Families of the architecture labels scan and the Python tool write, matched on the label
 * lower-cased with everything but letters and digits removed (SDXL derivatives are SDXL).
 */
export const ARCHITECTURE_LABEL_FAMILIES: readonly { readonly pattern: RegExp; readonly architecture: ArchitectureId }[] = [
  { pattern: /^sdxlrefiner$/, architecture: "sdxl-refiner" },
  { pattern: /^(sdxl(10|09)?|xl|pony|ponyxl|pdxl|illustrious|illustriousxl|noob|noobai|noobaixl)$/, architecture: "sdxl" },
  { pattern: /^(sd1|sd15|sd14|sdv15)$/, architecture: "sd1" },
  { pattern: /^(sd2|sd20|sd21|sdv21)$/, architecture: "sd2" },
  { pattern: /^sd3(5)?$/, architecture: "sd3" },
  { pattern: /^flux(1|dev|schnell)?$/, architecture: "flux" },
];
