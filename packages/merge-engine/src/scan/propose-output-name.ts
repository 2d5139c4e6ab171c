/**
 * The Python tool's output name: the architecture label, then up to five 8-character prefixes
 * of the file stems with `_ - . space` removed (case kept), then "merged".
 * `pony-furry.enhanced`, `ponySemi Real`, `pony_realistic_v2` → `Pony_ponyfurr_ponySemi_ponyreal_merged.safetensors`.
 */
export function proposeOutputName(architectureLabel: string, fileNames: readonly string[]): string {
  const prefixes = fileNames
    .map((f) => (f.split(/[\\/]/).pop() ?? f).replace(/\.[^.]*$/, "").replace(/[_\-.\s]+/g, "").slice(0, 8))
    .filter((p) => p.length > 0)
    .slice(0, 5);
  return `${[architectureLabel.replace(/[^A-Za-z0-9.]+/g, ""), ...prefixes, "merged"].join("_")}.safetensors`;
}
