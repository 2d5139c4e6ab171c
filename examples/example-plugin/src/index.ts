export { median } from "./median.js";
import { median } from "./median.js";

/** What `stmerge merge --plugin @stmerge/example-plugin` and a manifest's `plugins` load. */
export const mergeMethods = [median];
