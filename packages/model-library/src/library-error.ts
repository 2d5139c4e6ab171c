import { StmergeError } from "@stmerge/core-tensors";

/**
 * Errors of the model library: a root that is not a folder, a file that changed since it was
 * planned, a link that cannot be made there (hard link across filesystems), a damaged journal.
 */
export class LibraryError extends StmergeError {}
