/**
 * Reads bytes [from, end()) of a file in order, in chunks of at most `chunkBytes`, into two
 * buffers of shared memory: the next read is in flight while the caller takes the current chunk,
 * and a hashing tap on worker threads can read a chunk where it lies. `end` is asked again before
 * each read, so a file still being written may grow meanwhile. A chunk is valid until the caller
 * asks for the next one; a failed read is thrown there, and leaving early waits for the read in flight.
 */
export async function* readAheadChunks(
  read: (into: Uint8Array, at: number) => Promise<Uint8Array>,
  from: number,
  end: () => number,
  chunkBytes: number,
  /** Makes the two buffers (shared memory); e.g. `pageAlignedSharedBytes` for direct reads. */
  allocate: (byteLength: number) => Uint8Array = (n) => new Uint8Array(new SharedArrayBuffer(n)),
): AsyncGenerator<{ readonly at: number; readonly bytes: Uint8Array }> {
  let buffers: Uint8Array[] | undefined;
  // The chunk of turn t always lands in buffers[t % 2], whether it was read ahead or not.
  const start = (at: number, turn: number) => {
    const length = Math.min(chunkBytes, end() - at);
    buffers ??= [allocate(chunkBytes), allocate(chunkBytes)];
    const bytes = read(buffers[turn % 2]!.subarray(0, length), at);
    // Thrown when awaited; until then it is not unhandled.
    bytes.catch(() => undefined);
    return { length, bytes };
  };
  // A read started for the next turn and not taken yet.
  let ahead: ReturnType<typeof start> | undefined;
  try {
    for (let at = from, turn = 0; at < end(); turn++) {
      const current = ahead ?? start(at, turn);
      ahead = undefined;
      const chunk = await current.bytes;
      if (at + current.length < end()) ahead = start(at + current.length, turn + 1);
      yield { at, bytes: chunk };
      at += current.length;
    }
  } finally {
    if (ahead) await ahead.bytes.catch(() => undefined);
  }
}
