import { readFile, writeFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStmergeError } from "@stmerge/core-tensors";
import { auditCheckpoint } from "../src/audit-checkpoint.js";
import { openTorchCheckpoint } from "../src/open-torch-checkpoint.js";
import { fixture } from "./fixture-paths.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "safe-pickle-prop-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Byte flips, overwrites with extreme values, truncation and insertion at random places. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("fill" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }), value: fc.constantFrom(0x00, 0xff, 0x7f, 0x80) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat(), value: fc.constant(0) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
);

function mutate(original: Uint8Array, mutations: ReadonlyArray<typeof mutation extends fc.Arbitrary<infer T> ? T : never>): Uint8Array {
  let bytes = original.slice();
  for (const m of mutations) {
    if (bytes.length === 0) break;
    const at = m.at % bytes.length;
    if (m.kind === "set") bytes[at] = m.value;
    else if (m.kind === "fill") bytes.fill(m.value, at, at + m.length);
    else if (m.kind === "truncate") bytes = bytes.slice(0, at);
    else bytes = Uint8Array.from([...bytes.subarray(0, at), m.value, ...bytes.subarray(at)]);
  }
  return bytes;
}

describe("random mutations of valid files never crash, hang or over-allocate", () => {
  for (const name of ["views_zip.pt", "views_legacy.pt", "sd_lightning.ckpt", "plain.pkl"]) {
    it(name, async () => {
      const original = new Uint8Array(await readFile(fixture(name)));
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
          const bytes = mutate(original, mutations);
          const path = join(dir, `${name}.${run++}`);
          await writeFile(path, bytes);
          try {
            const checkpoint = await openTorchCheckpoint(path).catch((error: unknown) => {
              expect(isStmergeError(error), String(error)).toBe(true);
              return undefined;
            });
            if (checkpoint) {
              try {
                const source = checkpoint.allTensorsSource();
                for (const d of source.descriptors) {
                  expect(d.byteLength).toBeLessThanOrEqual(bytes.length + 65_536);
                  expect((await source.read(d.name)).byteLength).toBe(d.byteLength);
                }
              } catch (error) {
                expect(isStmergeError(error), String(error)).toBe(true);
              } finally {
                await checkpoint.close();
              }
            }
            const report = await auditCheckpoint(path);
            expect(["clean", "unsafe", "unreadable"]).toContain(report.status);
          } finally {
            await rm(path, { force: true });
          }
        }),
        { numRuns: 150, seed: 20261123 },
      );
    });
  }
});
