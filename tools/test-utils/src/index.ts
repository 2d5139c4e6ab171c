export { bundleEntry, type BundleEntryOptions } from "./bundle-entry.js";
