import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { manifestJsonSchema } from "./manifest-schema.js";

const schemaFile = fileURLToPath(new URL("../../schema/manifest.schema.json", import.meta.url));

describe("manifest JSON Schema", () => {
  it("the committed schema equals the one generated from the validator", () => {
    const generated = `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`;
    // Regenerate with: STMERGE_UPDATE_SCHEMA=1 npx vitest run src/manifest/manifest-schema.test.ts
    if (process.env.STMERGE_UPDATE_SCHEMA) writeFileSync(schemaFile, generated);
    expect(readFileSync(schemaFile, "utf8")).toBe(generated);
  });

  it("describes the Python tool's fields", () => {
    const schema = manifestJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["models", "vae", "output", "output_precision", "device", "prune", "overwrite", "merge_method", "consensus_exponent"]));
    expect(schema.required).toEqual(["models"]);
  });
});
