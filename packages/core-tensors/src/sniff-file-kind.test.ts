import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { sniffFile, sniffFileKind } from "./sniff-file-kind.js";
import { writeSafetensors } from "./safetensors-writer.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-sniff-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bytes = (...parts: (string | number[])[]) => Uint8Array.from(parts.flatMap((p) => (typeof p === "string" ? [...Buffer.from(p, "utf8")] : p)));
const kindOf = (head: Uint8Array, size = head.byteLength) => sniffFileKind(head, size).kind;

describe("sniffFileKind", () => {
  it("names the formats people mistake for safetensors by their magic bytes", () => {
    expect(kindOf(bytes("PK", [3, 4, 20, 0, 0, 0]))).toBe("zip");
    // torch.save legacy format and plain pickles: PROTO opcode, protocol 2..5.
    expect(kindOf(bytes([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c]))).toBe("pickle");
    expect(kindOf(bytes([0x80, 0x05, 0x95]))).toBe("pickle");
    expect(kindOf(bytes("GGUF", [3, 0, 0, 0]))).toBe("gguf");
    const tar = new Uint8Array(512);
    tar.set(Buffer.from("ustar"), 257);
    tar[0] = 0x61;
    expect(kindOf(tar)).toBe("tar");
    expect(kindOf(new Uint8Array(0))).toBe("empty");
    expect(kindOf(bytes([0, 1, 2, 3, 0xff, 0xfe, 0, 0, 0]))).toBe("unknown");
  });

  it("tells an HTML download page, JSON and plain text apart", () => {
    expect(kindOf(bytes("\uFEFF\n  <!DOCTYPE html><html><head><title>Sign in</title>"))).toBe("html");
    expect(kindOf(bytes("<html lang=en>"))).toBe("html");
    expect(kindOf(bytes('<?xml version="1.0"?>\n<html>'))).toBe("html");
    expect(kindOf(bytes('{"error": "not found"}'))).toBe("json");
    expect(kindOf(bytes("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 2132625894\n"))).toBe("text");
    expect(sniffFileKind(bytes("<html>"), 6).looksLike).toMatch(/^an HTML page; the download probably saved a web page/);
  });

  it("recognises a safetensors file by a header length within the reader's limit followed by {", async () => {
    const path = join(dir, "t.safetensors");
    await writeSafetensors(path, [{ name: "w", dtype: "F32", shape: [2], data: new Uint8Array(8) }]);
    await expect(sniffFile(path)).resolves.toMatchObject({ kind: "safetensors" });
    // Cut short: still safetensors-shaped (the reader then says it is truncated).
    expect(kindOf(bytes([8, 0, 0, 0, 0, 0, 0, 0], "{}"), 10)).toBe("safetensors");
    // "{" at byte 8 after a length no header can have: not safetensors.
    expect(kindOf(bytes([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0], "{}"))).not.toBe("safetensors");
    writeFileSync(join(dir, "page.safetensors"), "<!doctype html><p>Please log in</p>");
    await expect(sniffFile(join(dir, "page.safetensors"))).resolves.toMatchObject({ kind: "html" });
  });
});
