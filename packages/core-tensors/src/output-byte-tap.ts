/**
 * Something that sees every byte of an output file as it is written, in file order, so digests
 * of the output need no second read (the CLI plugs the cache's hashers in here; core-tensors
 * knows nothing of hashes).
 */
export interface OutputByteTap {
  /** Called once before any bytes: the file's final size and its first bytes (the safetensors header). */
  start?(file: { readonly size: number; readonly head: Uint8Array }): void | Promise<void>;
  /**
   * A chunk at `offset`; chunks arrive in file order without gaps or overlaps. Must not keep
   * `chunk` past its return (or past the promise it returns: a tap that hands bytes to worker
   * threads resolves once it has copied them, which is how it slows a writer that outruns it).
   */
  bytes(chunk: Uint8Array, offset: number): void | Promise<void>;
}

/** Out-of-order chunks held for a tap before it is given up on (the output is still written; only the tap stops). */
export const TAP_MAX_HELD_BYTES = 256 * 1024 * 1024;

export interface OrderedTap {
  /** Offers a chunk written at `offset`, in whatever order the writer writes; await it before reusing `chunk`. */
  write(chunk: Uint8Array, offset: number): Promise<void>;
  /** Whether the tap was fed every byte up to `size` (false when it was given up on). */
  complete(size: number): boolean;
}

/**
 * Delivers chunks to `tap` in file order: a chunk at the cursor goes straight through (no copy),
 * one ahead of it is copied and held until the gap closes. Holding more than `maxHeldBytes`
 * abandons the tap rather than memory: the caller then hashes the file the ordinary way.
 */
export function orderedTap(tap: OutputByteTap, maxHeldBytes = TAP_MAX_HELD_BYTES): OrderedTap {
  let cursor = 0;
  let held = new Map<number, Uint8Array>();
  let heldBytes = 0;
  let abandoned = false;
  return {
    async write(chunk, offset) {
      if (abandoned || chunk.byteLength === 0) return;
      if (offset !== cursor) {
        if (offset < cursor || held.has(offset) || heldBytes + chunk.byteLength > maxHeldBytes) {
          abandoned = true;
          held = new Map();
          return;
        }
        held.set(offset, chunk.slice());
        heldBytes += chunk.byteLength;
        return;
      }
      cursor += chunk.byteLength;
      await tap.bytes(chunk, offset);
      for (let next = held.get(cursor); next; next = held.get(cursor)) {
        const at = cursor;
        held.delete(at);
        heldBytes -= next.byteLength;
        cursor += next.byteLength;
        await tap.bytes(next, at);
      }
    },
    complete: (size) => !abandoned && cursor === size,
  };
}
