// Child process for the concurrency test: adds `count` entries one locked write at a time.
import { createHash } from "node:crypto";
import { JsonCacheStore } from "../src/json-cache-store.js";

const [cachePath, worker, countText] = process.argv.slice(2);
const count = Number(countText);
const store = new JsonCacheStore(cachePath!, { lock: { timeoutMs: 60_000 } });
for (let i = 0; i < count; i++) {
  const sha256 = createHash("sha256").update(`${worker}/${i}`).digest("hex");
  const path = `/models/${worker}/${i}.safetensors`;
  await store.put([
    {
      entry: { filename: `${i}.safetensors`, sha256, file_size: i, last_modified: new Date(0).toISOString(), precision: null, architecture: null, civitai: null, cached_at: new Date().toISOString() },
      path,
      pathRecord: { sha256, file_size: i, mtime_ms: 0 },
    },
  ]);
}
