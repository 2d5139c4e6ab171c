import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../test/safetensors-test-helpers.js";
import { createAtomicFile, writeFileAtomic } from "./atomic-file.js";

describe("atomic files", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());

  it("writeFileAtomic writes, refuses to overwrite, and overwrites when asked", async () => {
    const path = join(dir, "a.json");
    await writeFileAtomic(path, '{"a":1}');
    expect(await readFile(path, "utf8")).toBe('{"a":1}');
    await expect(writeFileAtomic(path, "x")).rejects.toMatchObject({ code: "OUTPUT_EXISTS", file: path, message: `${path}: output already exists (use --overwrite to replace it)` });
    await writeFileAtomic(path, new Uint8Array([104, 105]), { overwrite: true });
    expect(await readFile(path, "utf8")).toBe("hi");
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("the target appears only on commit; commit and abort settle once", async () => {
    const path = join(dir, "b.bin");
    const file = await createAtomicFile(path);
    expect(file.tempPath.startsWith(join(dir, ".b.bin."))).toBe(true);
    await file.handle.write(new Uint8Array([1, 2, 3]), 0, 3, 0);
    expect((await readdir(dir)).includes("b.bin")).toBe(false);
    await file.commit();
    expect(Array.from(await readFile(path))).toEqual([1, 2, 3]);
    await expect(file.commit()).rejects.toMatchObject({ code: "OUTPUT_SETTLED" });
    await file.abort(); // no-op after commit: the committed file stays
    expect(Array.from(await readFile(path))).toEqual([1, 2, 3]);
  });

  it("abort leaves an existing target untouched", async () => {
    const path = join(dir, "c.txt");
    await writeFile(path, "old");
    const file = await createAtomicFile(path, { overwrite: true });
    await file.handle.write(new Uint8Array([0x6e, 0x65, 0x77]), 0, 3, 0);
    await file.abort();
    expect(await readFile(path, "utf8")).toBe("old");
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("commit's verify reads the temp file through its own handle, whatever another writer puts at the target meanwhile", async () => {
    const path = join(dir, "shared.bin");
    const ours = await createAtomicFile(path, { overwrite: true });
    await ours.handle.write(new Uint8Array([1, 1, 1]), 0, 3, 0);
    let seen: number[] = [];
    await ours.commit({
      verify: async (handle, tempPath) => {
        // The other run commits its own file at the same target while we check ours.
        await writeFileAtomic(path, new Uint8Array([2, 2]), { overwrite: true });
        const buf = new Uint8Array(3);
        await handle.read(buf, 0, 3, 0);
        seen = Array.from(buf);
        expect(tempPath).toBe(ours.tempPath);
      },
    });
    expect(seen).toEqual([1, 1, 1]);
    expect(Array.from(await readFile(path))).toEqual([1, 1, 1]);
    expect((await readdir(dir)).filter((f) => f.startsWith(".shared.bin"))).toEqual([]);
  });

  it("a failed verify removes only our temp file: the other writer's file at the target survives", async () => {
    const path = join(dir, "kept.bin");
    const ours = await createAtomicFile(path, { overwrite: true });
    await ours.handle.write(new Uint8Array([9]), 0, 1, 0);
    await expect(
      ours.commit({
        verify: async () => {
          await writeFileAtomic(path, "theirs", { overwrite: true });
          throw new Error("read-back mismatch");
        },
      }),
    ).rejects.toThrow("read-back mismatch");
    expect(await readFile(path, "utf8")).toBe("theirs");
    expect((await readdir(dir)).filter((f) => f.startsWith(".kept.bin"))).toEqual([]);
    await expect(ours.commit()).rejects.toMatchObject({ code: "OUTPUT_SETTLED" });
  });

  describe("write-behind (wrote)", () => {
    /** Wraps the file's handle.datasync: counts calls, holds each one until `release`, or fails. */
    function instrument(file: Awaited<ReturnType<typeof createAtomicFile>>, fail?: NodeJS.ErrnoException) {
      const state = { calls: 0, inFlight: 0, maxInFlight: 0, release: () => undefined as void };
      const real = file.handle.datasync.bind(file.handle);
      file.handle.datasync = async () => {
        state.calls++;
        state.maxInFlight = Math.max(state.maxInFlight, ++state.inFlight);
        await new Promise<void>((resolve) => (state.release = resolve));
        state.inFlight--;
        if (fail) throw fail;
        return real();
      };
      return state;
    }

    it("starts one background fdatasync per flushBehindBytes written, never two at once, and commit waits for it", async () => {
      const path = join(dir, "wb.bin");
      const file = await createAtomicFile(path, { flushBehindBytes: 10 });
      const sync = instrument(file);
      await file.handle.write(new Uint8Array(12), 0, 12, 0);
      file.wrote(4);
      file.wrote(4);
      expect(sync.calls).toBe(0);
      file.wrote(4); // 12 ≥ 10: a flush starts
      expect(sync.calls).toBe(1);
      file.wrote(40); // while it runs: no second one
      expect(sync.calls).toBe(1);
      let committed = false;
      const commit = file.commit().then(() => (committed = true));
      await new Promise((r) => setTimeout(r, 20));
      expect(committed).toBe(false); // waiting for the background flush
      sync.release();
      await commit;
      expect(sync.maxInFlight).toBe(1);
      expect((await readFile(path)).length).toBe(12);
    });

    it("a failed background fdatasync fails the commit: no output, no temp file", async () => {
      const path = join(dir, "wb-fail.bin");
      const file = await createAtomicFile(path, { flushBehindBytes: 1 });
      const sync = instrument(file, Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
      await file.handle.write(new Uint8Array(8), 0, 8, 0);
      file.wrote(8);
      sync.release();
      await expect(file.commit()).rejects.toBeDefined();
      expect((await readdir(dir)).filter((n) => n.includes("wb-fail"))).toEqual([]);
    });

    it("flushBehindBytes 0 never syncs before commit", async () => {
      const file = await createAtomicFile(join(dir, "wb-none.bin"), { flushBehindBytes: 0 });
      const sync = instrument(file);
      file.wrote(1 << 30);
      expect(sync.calls).toBe(0);
      await file.abort();
    });
  });
});
