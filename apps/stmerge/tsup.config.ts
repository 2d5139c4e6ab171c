import { defineConfig } from "tsup";

// One file with every workspace and npm dependency bundled in; only native,
// optional modules stay external and are loaded lazily at run time.
export default defineConfig({
  entry: { stmerge: "src/main.ts" },
  format: ["esm"],
  dts: false,
  sourcemap: false,
  clean: true,
  // One file: dynamic imports are inlined instead of becoming chunks beside it.
  splitting: false,
  target: "node20",
  platform: "node",
  noExternal: [/.*/],
  external: ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node", "@napi-rs/blake-hash"],
  // Bundle the workspace packages from their TypeScript sources.
  esbuildOptions(options) {
    options.conditions = ["@stmerge/source"];
  },
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __stmergeCreateRequire } from 'node:module'; const require = __stmergeCreateRequire(import.meta.url);",
  },
});
