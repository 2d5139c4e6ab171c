// The I/O floor: read every input once and write one output of the same size (fsync'd),
// with the same 64 MiB-chunk pattern and no compute.
// usage: node tools/bench/io-floor.mjs OUTPUT INPUT...   (the output is as large as the last input)
import { open, unlink } from "node:fs/promises";

const [output, ...inputs] = process.argv.slice(2);
const chunk = Buffer.allocUnsafe(64 << 20);
const started = performance.now();
let size = 0;
for (const path of inputs) {
  const h = await open(path, "r");
  size = (await h.stat()).size;
  for (let pos = 0; pos < size; ) {
    const { bytesRead } = await h.read(chunk, 0, chunk.length, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
  }
  await h.close();
}
const out = await open(output, "w");
for (let pos = 0; pos < size; pos += chunk.length) await out.write(chunk, 0, Math.min(chunk.length, size - pos), pos);
await out.sync();
await out.close();
await unlink(output);
process.stdout.write(JSON.stringify({ seconds: (performance.now() - started) / 1000 }) + "\n");
