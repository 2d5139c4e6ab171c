import { countEqual, type QuotaSpan, type WindowPart } from "@stmerge/core-tensors";

/** Elements [from, to) of a key and how many of their cut-equal elements one task vector keeps. */
export interface KeptSpan {
  readonly from: number;
  readonly to: number;
  readonly quota: number;
}

/**
 * How one task vector's `quota` of elements equal to the cut splits over the parts of its window
 * list (`list` holds every magnitude in the window, part after part in the order the parts were
 * listed, each part's in index order, so every element equal to the cut): a part keeps its own
 * cut-equal elements while the parts before it in the key left any quota, as the merge keeps them
 * in index order. The spans come out in index order. Undefined when the parts do not account for
 * the list.
 */
export function keptSpans(list: Uint32Array, parts: readonly WindowPart[], cut: number, quota: number): KeptSpan[] | undefined {
  if (parts.reduce((sum, p) => sum + p.inWindow, 0) !== list.length) return undefined;
  let at = 0;
  const counted = parts.map(({ from, to, inWindow }) => {
    const equal = countEqual(list, at, at + inWindow, cut);
    at += inWindow;
    return { from, to, equal };
  });
  // The executor may gather a key's chunks in any order (MergeStatistics.anyChunkOrder).
  counted.sort((a, b) => a.from - b.from);
  let left = quota;
  return counted.map(({ from, to, equal }) => {
    const kept = Math.min(equal, left);
    left -= kept;
    return { from, to, quota: kept };
  });
}

/**
 * The merge pass's spans for the chunk of `length` elements at `offset` (kernel-backend's
 * QuotaSpan, chunk-relative), and each task vector's quota there: a task vector with no quota
 * `left` keeps 0 everywhere, the others need kept spans that cover the chunk on the same
 * boundaries. Undefined when some do not (the backend then counts), or none has a quota left.
 */
export function chunkQuotaSpans(kept: readonly (readonly KeptSpan[] | undefined)[], left: readonly number[], offset: number, length: number): { spans: QuotaSpan[]; quotas: number[] } | undefined {
  let bounds: [number, number][] | undefined;
  const inChunk = kept.map((spans, k) => {
    if (left[k]! <= 0) return undefined;
    const own = spans?.filter((s) => s.from < offset + length && s.to > offset);
    if (!own || own.length === 0 || own[0]!.from !== offset || own.at(-1)!.to !== offset + length) return null;
    const mine = own.map((s): [number, number] => [s.from - offset, s.to - offset]);
    if (!mine.every(([from], i) => i === 0 || from === mine[i - 1]![1])) return null;
    if (bounds && (bounds.length !== mine.length || !bounds.every(([from, to], i) => from === mine[i]![0] && to === mine[i]![1]))) return null;
    bounds = mine;
    return own;
  });
  if (!bounds || inChunk.includes(null)) return undefined;
  const spans = bounds.map(([from, to], i): QuotaSpan => ({ from, to, quotas: inChunk.map((own) => own?.[i]!.quota ?? 0) }));
  const quotas = inChunk.map((_, k) => spans.reduce((sum, s) => sum + s.quotas[k]!, 0));
  return { spans, quotas };
}
