import { open, type FileHandle } from "node:fs/promises";

export type InjectedFault = "ENOSPC" | "EROFS" | "EACCES" | "EIO";

const MESSAGES: Record<InjectedFault, string> = {
  ENOSPC: "no space left on device",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EIO: "i/o error",
};

/**
 * Test-only fault injector for the file layer: from the `atWrite`-th `FileHandle.write` of this
 * process on (1-based), every write fails with the errno error Node would raise (same `code`,
 * `errno`, `syscall`). Installed by a test, removed by the function it returns; production code
 * has no hook. `calls()` says how many writes were attempted.
 */
export async function injectWriteFault(code: InjectedFault, atWrite: number): Promise<{ restore(): void; calls(): number }> {
  const probe = await open(process.execPath, "r");
  const proto = Object.getPrototypeOf(probe) as { write: (this: FileHandle, ...args: unknown[]) => Promise<unknown> };
  await probe.close();
  const original = proto.write;
  let count = 0;
  proto.write = async function (this: FileHandle, ...args: unknown[]) {
    count++;
    if (count >= atWrite) {
      const error = new Error(`${code}: ${MESSAGES[code]}, write`) as NodeJS.ErrnoException;
      error.code = code;
      error.syscall = "write";
      error.errno = code === "ENOSPC" ? -28 : code === "EROFS" ? -30 : code === "EACCES" ? -13 : -5;
      throw error;
    }
    return original.apply(this, args);
  };
  return {
    restore: () => {
      proto.write = original;
    },
    calls: () => count,
  };
}
