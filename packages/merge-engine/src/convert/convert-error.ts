import { StmergeError } from "@stmerge/core-tensors";

/** Failures of convert and verify: no state dict, name collisions, an output that does not read back as written. */
export class ConvertError extends StmergeError {}
