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
  external: ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node", "@napi-rs/blake-hash", "@node-rs/crc32"],
  // ink (stmerge edit) imports react-devtools-core only when DEV=true: an empty module stands in for it
  // (external would become a static import of a package that is not installed).
  esbuildPlugins: [
    {
      name: "no-react-devtools",
      setup(build) {
        build.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: "react-devtools-core", namespace: "stmerge-empty" }));
        build.onLoad({ filter: /.*/, namespace: "stmerge-empty" }, () => ({ contents: "export default undefined;", loader: "js" }));
      },
    },
  ],
  // Bundle the workspace packages from their TypeScript sources.
  esbuildOptions(options) {
    options.conditions = ["@stmerge/source"];
    // React (under the editor) picks its production build by this; it drops its development
    // checks, which a one-file CLI never needs, and so shrinks the file every command loads.
    options.define = { ...options.define, "process.env.NODE_ENV": '"production"' };
  },
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __stmergeCreateRequire } from 'node:module'; const require = __stmergeCreateRequire(import.meta.url);",
  },
});
