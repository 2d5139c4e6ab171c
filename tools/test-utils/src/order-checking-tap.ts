import { createHash } from "node:crypto";

/**
 * An output tap for tests of what feeds one: it refuses a chunk out of file order, and one that
 * changes before its promise resolves (each is held a few milliseconds first, so a feeder that
 * reuses the buffer too early, say by reading ahead into it, shows as changed bytes); it hashes
 * what it is fed.
 */
export function orderCheckingTap(pauseMs = 2) {
  const hash = createHash("sha256");
  let fed = 0;
  return {
    async bytes(chunk: Uint8Array, offset: number): Promise<void> {
      if (offset !== fed) throw new Error(`chunk at ${offset}, expected one at ${fed}`);
      const held = Uint8Array.from(chunk);
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      if (Buffer.compare(held, chunk) !== 0) throw new Error(`the chunk at ${offset} changed before its promise resolved`);
      hash.update(chunk);
      fed = offset + chunk.byteLength;
    },
    /** Bytes taken so far (the offset the next chunk must start at). */
    get fed() {
      return fed;
    },
    /** SHA-256 hex of everything taken. */
    sha256: () => hash.digest("hex"),
  };
}
