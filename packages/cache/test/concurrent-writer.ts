// Child process for the concurrency tests: adds `count` entries one locked write at a time.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { JsonCacheStore } from "../src/json-cache-store.js";
import { ModelCache } from "../src/model-cache.js";

// With `recorder`: writes real files and records them through a CacheRecorder, 4 records a write.
const [cachePath, worker, countText, mode] = process.argv.slice(2);
const count = Number(countText);
const store = new JsonCacheStore(cachePath!, { lock: { timeoutMs: 60_000 } });
if (mode === "recorder") {
  const folder = join(dirname(cachePath!), `files-${worker}`);
  await mkdir(folder, { recursive: true });
  const recorder = await new ModelCache(store).recorder({ flushEvery: 4, flushIntervalMs: 60_000 });
  for (let i = 0; i < count; i++) {
    const path = join(folder, `${i}.bin`);
    await writeFile(path, `${worker}/${i}`);
    await recorder.record(path, { hashes: { sha256: createHash("sha256").update(`${worker}/${i}`).digest("hex") } });
  }
  await recorder.flush();
  process.exit(0);
}
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
