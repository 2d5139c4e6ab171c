/**
 * The order in which statistics pass `pass` visits a key's `count` chunks (indices). In index
 * order, unless the statistics do not depend on the order (`MergeStatistics.anyChunkOrder`):
 * then even passes end with the first chunks, odd ones start with them, so that each pass, and
 * the merge pass after pass 0 (where methods usually stop), starts with the chunks the pass
 * before read last, which the executor's buffers still hold. An even pass starts with the full
 * chunk before the last: a method may sample the first chunk it gathers (TIES places its cut
 * so), and the last chunk may be short.
 */
export function gatheringOrder(count: number, pass: number, anyChunkOrder: boolean): number[] {
  const inOrder = Array.from({ length: count }, (_, i) => i);
  if (!anyChunkOrder || pass % 2 === 1 || count < 2) return inOrder;
  return [count - 2, count - 1, ...inOrder.slice(0, count - 2).reverse()];
}
