import pkg from "../package.json" with { type: "json" };

/**
 * The one source of merge-engine's version: its package.json, inlined by the bundler at build time,
 * so no version string is typed by hand anywhere. Files this package writes record it (converter
 * name, merge metadata when the caller names no tool); the CLI passes its own version instead.
 */
export const MERGE_ENGINE_VERSION: string = pkg.version;
