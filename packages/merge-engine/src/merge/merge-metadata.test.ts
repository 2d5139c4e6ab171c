import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../manifest/load-manifest.js";
import { tempDir, writeTinyModel } from "@stmerge/test-utils";
import { buildMergeMetadata, MAX_ANCESTRY_DEPTH } from "./merge-metadata.js";
import type { MergePlan } from "./merge-plan.js";
import { runMerge } from "./run-merge.js";

let dir: string;
let plan: MergePlan;
beforeAll(async () => {
  dir = tempDir("stmerge-ancestry-");
  for (const n of ["a", "b"]) await writeTinyModel(join(dir, `${n}.safetensors`), { seed: n === "a" ? 1 : 2 });
  const text = JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.5 }, { path: "b.safetensors", weight: 0.5 }] });
  writeFileSync(join(dir, "m.json"), text);
  const hashes = new Map([[join(dir, "a.safetensors"), "a".repeat(64)], [join(dir, "b.safetensors"), "b".repeat(64)]]);
  plan = (await runMerge(parseManifest(text, join(dir, "m.json")), { dryRun: true, hashes })).plan;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const deep = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

describe("buildMergeMetadata with hostile parent metadata", () => {
  it("drops a parent's recipe or ancestry nested a million deep instead of recursing into it", () => {
    const md = buildMergeMetadata(plan, {
      parentMetadata: [{ sd_merge_recipe: `{"x":${deep(1_000_000)}}`, sd_merge_models: `{"${"c".repeat(64)}":{"x":${deep(1_000_000)}}}` }, {}],
      toolVersion: "t",
    });
    const ancestry = JSON.parse(md.sd_merge_models!) as Record<string, { sd_merge_recipe: unknown }>;
    expect(Object.keys(ancestry).sort()).toEqual(["a".repeat(64), "b".repeat(64)]);
    expect(ancestry["a".repeat(64)]!.sd_merge_recipe).toBeNull();
  });

  it("keeps ancestry nested up to the limit", () => {
    const recipe = `{"x":${deep(MAX_ANCESTRY_DEPTH - 1)}}`;
    const md = buildMergeMetadata(plan, { parentMetadata: [{ sd_merge_recipe: recipe }, {}], toolVersion: "t" });
    expect(JSON.stringify((JSON.parse(md.sd_merge_models!) as Record<string, { sd_merge_recipe: unknown }>)["a".repeat(64)]!.sd_merge_recipe)).toBe(recipe);
  });

  it("merges a parent's 200 000-entry ancestry in linear time into at most the size cap, keeping entries in order", () => {
    const entries = Array.from({ length: 200_000 }, (_, i) => [i.toString(16).padStart(64, "0"), { name: `m${i}`, sd_merge_recipe: { type: "webui", n: i } }] as const);
    const limit = 64 * 1024;
    const md = buildMergeMetadata(plan, { parentMetadata: [{ sd_merge_models: JSON.stringify(Object.fromEntries(entries)) }, {}], toolVersion: "t", ancestryLimitBytes: limit });
    expect(md.sd_merge_models!.length).toBeLessThanOrEqual(limit);
    const kept = Object.keys(JSON.parse(md.sd_merge_models!) as object);
    expect(kept.length).toBeGreaterThan(100);
    expect(kept.slice(2, 5)).toEqual([entries[0]![0], entries[1]![0], entries[2]![0]]);
  });

  it("treats __proto__ and constructor in a parent's ancestry as plain keys", () => {
    const md = buildMergeMetadata(plan, { parentMetadata: [{ sd_merge_models: '{"__proto__":{"name":"p"},"constructor":{"name":"c"}}' }, {}], toolVersion: "t" });
    const ancestry = JSON.parse(md.sd_merge_models!) as Record<string, unknown>;
    expect(Object.keys(ancestry)).toEqual(["a".repeat(64), "b".repeat(64), "__proto__", "constructor"]);
  });
});
