import { StmergeError } from "@stmerge/core-tensors";

/** Errors of merge planning, validation and execution; each has its own stable `code`. */
export class MergeError extends StmergeError {}
