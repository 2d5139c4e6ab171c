export * from "./run-cli.js";
export * from "./cli-io.js";
export * from "./cli-context.js";
export * from "./cli-error.js";
export * from "./render-table.js";
export * from "./format.js";
export * from "./progress-renderer.js";
