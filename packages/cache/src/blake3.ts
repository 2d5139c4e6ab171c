import { createRequire } from "node:module";
import { createBLAKE3 } from "hash-wasm";

/** An incremental hasher over byte chunks. */
export interface IncrementalHasher {
  update(bytes: Uint8Array): void;
  /** Lowercase hex digest; the hasher is finished afterwards. */
  digestHex(): string;
}

export type Blake3Backend = "native" | "wasm";

interface NativeBlake3Module {
  Blake3Hasher: new () => { update(input: Uint8Array): unknown; digest(format?: string): string };
}

const require = createRequire(import.meta.url);
let nativeModule: NativeBlake3Module | null | undefined;

/** Loads @napi-rs/blake-hash once; an absent or broken prebuilt gives `null` (the WebAssembly fallback is used). */
function loadNative(): NativeBlake3Module | null {
  if (nativeModule !== undefined) return nativeModule;
  try {
    const mod = require("@napi-rs/blake-hash") as NativeBlake3Module;
    // Probe once: a prebuilt for another libc can load and still fail on first use.
    new mod.Blake3Hasher().update(new Uint8Array(1));
    nativeModule = mod;
  } catch {
    nativeModule = null;
  }
  return nativeModule;
}

/** Path of the native module for worker threads, or undefined when it is not usable here. */
export function nativeBlake3ModulePath(): string | undefined {
  if (!loadNative()) return undefined;
  return require.resolve("@napi-rs/blake-hash");
}

/**
 * Path of hash-wasm's CommonJS build for worker threads; undefined where it cannot be resolved
 * (a bundle that inlined it), in which case digests that need it run on the calling thread.
 */
export function wasmHashModulePath(): string | undefined {
  try {
    return require.resolve("hash-wasm");
  } catch {
    return undefined;
  }
}

/** The BLAKE3 implementation `createBlake3Hasher` will use, given a preference. */
export function blake3Backend(prefer: Blake3Backend | "auto" = "auto"): Blake3Backend {
  if (prefer === "wasm") return "wasm";
  return loadNative() ? "native" : "wasm";
}

/** BLAKE3-256: native (SIMD, prebuilt from npm) when it loads, else hash-wasm's WebAssembly build. */
export async function createBlake3Hasher(prefer: Blake3Backend | "auto" = "auto"): Promise<IncrementalHasher> {
  if (blake3Backend(prefer) === "native") {
    const h = new (loadNative() as NativeBlake3Module).Blake3Hasher();
    return { update: (bytes) => void h.update(bytes), digestHex: () => h.digest("hex") };
  }
  const h = await createBLAKE3();
  h.init();
  return { update: (bytes) => void h.update(bytes), digestHex: () => h.digest("hex") };
}
