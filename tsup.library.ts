import { defineConfig } from "tsup";

/** The build of every library package: ESM with .d.ts types from src/index.ts, for Node 20. */
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  platform: "node",
});
