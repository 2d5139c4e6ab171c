/** The prefix `nn.DataParallel` / `DistributedDataParallel` adds to every key. */
export const DATA_PARALLEL_PREFIX = "module.";

export interface StrippedName {
  readonly original: string;
  readonly name: string;
}

/**
 * Removes DataParallel `module.` prefixes. A key keeps its prefix only when stripping it would
 * collide with another key, so no tensor is ever lost or overwritten.
 */
export function stripDataParallelPrefixes(names: readonly string[]): StrippedName[] {
  const taken = new Set(names.filter((n) => !n.startsWith(DATA_PARALLEL_PREFIX)));
  return names.map((original) => {
    if (!original.startsWith(DATA_PARALLEL_PREFIX)) return { original, name: original };
    const name = original.slice(DATA_PARALLEL_PREFIX.length);
    if (name.length === 0 || taken.has(name)) return { original, name: original };
    taken.add(name);
    return { original, name };
  });
}
