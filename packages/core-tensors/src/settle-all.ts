/**
 * Like Promise.all, but rejects only once every promise has settled (with the first rejection in
 * order). Kernel jobs split across threads write into shared buffers: when one range fails, the
 * caller must not reuse those buffers while another thread is still writing into them.
 */
export async function settleAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
