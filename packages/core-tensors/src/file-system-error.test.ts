import { existsSync, mkdtempSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { createAtomicFile, openTempPaths, writeFileAtomic } from "./atomic-file.js";
import { fileSystemError } from "./file-system-error.js";
import { createSafetensorsWriter, writeSafetensors } from "./safetensors-writer.js";
import { injectWriteFault, type InjectedFault } from "@stmerge/test-utils";

const dir = mkdtempSync(join(tmpdir(), "stmerge-file-faults-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  restore = undefined;
});

async function fault(code: InjectedFault, atWrite: number) {
  const f = await injectWriteFault(code, atWrite);
  restore = f.restore;
  return f;
}

const tensor = (name: string, n: number) => ({ name, dtype: "F32" as const, shape: [n], data: new Uint8Array(n * 4).fill(7) });
const leftovers = (sub: string) => readdirSync(sub).filter((n) => n.endsWith(".tmp"));

describe("disk faults in the file layer (injected at the Nth write)", () => {
  it.each([
    ["ENOSPC", 1, "DISK_FULL"],
    ["ENOSPC", 3, "DISK_FULL"],
    ["EROFS", 2, "READ_ONLY_FILE_SYSTEM"],
    ["EACCES", 2, "PERMISSION_DENIED"],
  ] as const)("safetensors writer, %s at write %i: typed %s naming the file, no temp file, no output", async (code, at, expected) => {
    const sub = mkdtempSync(join(dir, "w-"));
    const path = join(sub, "out.safetensors");
    const f = await fault(code, at);
    const error = await writeSafetensors(path, [tensor("a", 16), tensor("b", 16), tensor("c", 16)]).catch((e: unknown) => e);
    f.restore();
    expect(f.calls()).toBeGreaterThanOrEqual(at);
    expect(error).toMatchObject({ code: expected, file: path });
    expect((error as Error).message.startsWith(`${path}: `)).toBe(true);
    expect((error as Error).message).not.toContain("\n");
    expect(leftovers(sub)).toEqual([]);
    expect(existsSync(path)).toBe(false);
    expect(openTempPaths()).toEqual([]);
  });

  it("a full disk says how much the file needed and how much is free", async () => {
    const sub = mkdtempSync(join(dir, "full-"));
    const path = join(sub, "out.safetensors");
    const sink = createSafetensorsWriter(path);
    await fault("ENOSPC", 2);
    await sink.begin([{ name: "a", dtype: "F32", shape: [250_000], byteLength: 1_000_000 }]);
    const error = await sink.write("a", new Uint8Array(1_000_000)).catch((e: unknown) => e);
    const s = statfsSync(sub);
    const freeGb = (s.bavail * s.bsize) / 1e9;
    expect(error).toMatchObject({ code: "DISK_FULL", file: path, details: { errno: "ENOSPC" } });
    expect((error as Error).message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: disk full: 1\\.0 MB needed, [0-9.]+ [KMGT]?B free \\(free some space or write elsewhere with -o\\)$`));
    // The free figure is the file system's own (statfs), within rounding.
    const shown = /needed, ([0-9.]+) ([KMGT]?B) free/.exec((error as Error).message)!;
    const factor = { B: 1e-9, KB: 1e-6, MB: 1e-3, GB: 1, TB: 1e3 }[shown[2] as "GB"];
    expect(Math.abs(Number(shown[1]) * factor - freeGb)).toBeLessThan(Math.max(0.1 * freeGb, 0.001));
    expect(leftovers(sub)).toEqual([]);
  });

  it("writeFileAtomic and a raw atomic file under EROFS: typed error, temp removed, target untouched", async () => {
    const sub = mkdtempSync(join(dir, "a-"));
    const path = join(sub, "small.json");
    await fault("EROFS", 1);
    await expect(writeFileAtomic(path, "{}")).rejects.toMatchObject({ code: "READ_ONLY_FILE_SYSTEM", file: path, message: `${path}: read-only file system (write the output somewhere else with -o)` });
    expect(readdirSync(sub)).toEqual([]);
    restore?.();
    const file = await createAtomicFile(path);
    await fault("EACCES", 1);
    await expect(file.handle.write(new Uint8Array(4), 0, 4, 0)).rejects.toMatchObject({ code: "EACCES" });
    await file.abort();
    expect(readdirSync(sub)).toEqual([]);
  });

  it("maps the other errno codes; typed and non-errno errors pass through unchanged", async () => {
    const errno = (code: string) => Object.assign(new Error(code), { code, syscall: "open" });
    await expect(fileSystemError(errno("EISDIR"), "/m/dir.ckpt")).resolves.toMatchObject({ code: "IS_A_FOLDER", message: "/m/dir.ckpt: is a folder, not a file" });
    await expect(fileSystemError(errno("ENOENT"), "/m/x")).resolves.toMatchObject({ code: "FILE_NOT_FOUND", message: "/m/x: no such file or folder" });
    await expect(fileSystemError(errno("EMFILE"), "/m/x")).resolves.toMatchObject({ code: "TOO_MANY_OPEN_FILES" });
    await expect(fileSystemError(errno("EXDEV"), "/m/x")).resolves.toMatchObject({ code: "FILE_SYSTEM_ERROR", message: "/m/x: open failed: EXDEV" });
    const plain = new Error("boom");
    await expect(fileSystemError(plain, "/m/x")).resolves.toBe(plain);
  });
});
