import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DedupeJournal, defaultJournalDir, readJournal } from "./dedupe-journal.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-library-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("dedupe journal", () => {
  it("appends JSON lines and reads them back; a torn last line (crash while appending) is ignored", async () => {
    const path = join(dir, "sub", "j.jsonl");
    const journal = await DedupeJournal.open(path);
    await journal.append({ op: "start", roots: ["/a"], actions: 1, pid: 1 });
    await journal.append({ op: "end" });
    await journal.close();
    appendFileSync(path, '{"v":1,"op":"do');
    expect((await readJournal(path)).map((r) => r.op)).toEqual(["start", "end"]);
  });
  it("a damaged line in the middle is an error naming the file and line", async () => {
    const path = join(dir, "bad.jsonl");
    writeFileSync(path, '{"v":1,"op":"start"}\nnot json\n{"v":1,"op":"end"}\n');
    await expect(readJournal(path)).rejects.toMatchObject({ code: "LIBRARY_JOURNAL_DAMAGED", file: path });
    await expect(readJournal(join(dir, "none.jsonl"))).rejects.toMatchObject({ code: "LIBRARY_JOURNAL_NOT_FOUND" });
  });
  it("lives beside the metadata cache unless STMERGE_LIBRARY_JOURNALS names a folder", () => {
    expect(defaultJournalDir({ STMERGE_CACHE: "/x/cache/model_cache.json" })).toBe("/x/cache/library-journals");
    expect(defaultJournalDir({ STMERGE_LIBRARY_JOURNALS: "/j" })).toBe("/j");
  });
});
