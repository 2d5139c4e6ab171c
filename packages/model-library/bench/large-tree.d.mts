export declare const LARGE_TREE_FOLDERS: readonly (readonly [string, string])[];
export declare function makeLargeTree(
  base: string,
  options?: { files?: number; pairs?: number; unique?: number; bigPairs?: number; bigBytes?: number },
): { files: number; groups: number; sameSizeFiles: number; wastedBytes: number };
