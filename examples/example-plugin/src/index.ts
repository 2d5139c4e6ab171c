export { median } from "./median.js";
import { median } from "./median.js";

/** What `stmerge merge --plugin @stmerge/example-plugin` loads (a manifest's `plugins` only name it; they never load code). */
export const mergeMethods = [median];
