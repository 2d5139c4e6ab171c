import { realpathSync } from "node:fs";
import { dirname, isAbsolute, relative, sep, win32 } from "node:path";
import { MergeError } from "../merge-error.js";
import type { LoadedManifest } from "./load-manifest.js";

/**
 * A manifest is data, possibly downloaded: the output it names must be a `.safetensors` file
 * inside the manifest's own folder. Absolute paths, `..` segments, other extensions and
 * folders that lead outside through a symlink are refused with one line saying to use `-o`.
 * (An output given with `-o` is the user's own choice and is not checked here.)
 */
export function confineManifestOutput(manifest: LoadedManifest): string {
  const { path, resolvedPath } = manifest.output;
  const refuse = (why: string): never => {
    throw new MergeError("MANIFEST_OUTPUT_REFUSED", `${manifest.file}: output ${JSON.stringify(path.slice(0, 200))} ${why}; a manifest may only name a .safetensors file inside its own folder (use -o to write elsewhere)`, { file: manifest.file });
  };
  if (isAbsolute(path) || win32.isAbsolute(path)) refuse("is an absolute path");
  if (path.split(/[\\/]/).includes("..")) refuse("leaves the manifest's folder with ..");
  if (!path.toLowerCase().endsWith(".safetensors")) refuse("is not a .safetensors file");
  // Symlinked folders: compare real paths of the manifest folder and the output's folder.
  let realDir: string;
  let realOutDir: string;
  try {
    realDir = realpathSync(manifest.dir);
    realOutDir = realpathSync(dirname(resolvedPath));
  } catch {
    return resolvedPath; // a missing folder is reported by the merge as MERGE_OUTPUT_DIR_MISSING
  }
  const rel = relative(realDir, realOutDir);
  if (rel !== "" && (rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel))) refuse(`leads outside the manifest's folder (to ${realOutDir})`);
  return resolvedPath;
}
