import { constants } from "node:fs";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh temp folder; `cleanup` removes it. */
export async function tempDir(prefix = "stmerge-ct-"): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Raw safetensors bytes from a header text and a data block, without any validation, so tests
 * can build every kind of broken file. `headerLength` overrides the u64 prefix.
 */
export function rawSafetensors(header: string | Uint8Array | object, data: Uint8Array | number = 0, headerLength?: bigint): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.byteLength + body.byteLength);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(body, 8 + json.byteLength);
  return out;
}

export async function writeRaw(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** Whether the filesystem of `folder` takes O_DIRECT, asked of the kernel directly (a probe file, removed). */
export async function takesODirect(folder: string): Promise<boolean> {
  const probe = join(folder, `probe-${process.pid}`);
  await writeFile(probe, "");
  try {
    const handle = await open(probe, constants.O_WRONLY | constants.O_DIRECT!);
    await handle.close();
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { force: true });
  }
}
