import pkg from "../package.json" with { type: "json" };

/** The CLI's version; the bundled app inlines the JSON at build time. */
export const CLI_VERSION: string = pkg.version;
