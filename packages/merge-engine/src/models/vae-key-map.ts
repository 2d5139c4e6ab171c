/**
 * Standalone VAE files come in LDM naming (`encoder.down.0.block.1.conv1.weight`, what
 * checkpoints embed under `first_stage_model.`) or diffusers naming
 * (`encoder.down_blocks.0.resnets.1.conv1.weight`). These rules rename diffusers keys to LDM;
 * `$UP(n)` reverses decoder up-block order (diffusers counts from the bottom).
 */
const RENAMES: readonly { readonly from: RegExp; readonly to: string }[] = [
  { from: /^(encoder|decoder)\.conv_norm_out\./, to: "$1.norm_out." },
  { from: /^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\./, to: "encoder.down.$1.block.$2." },
  { from: /^encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\./, to: "encoder.down.$1.downsample.conv." },
  { from: /^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\./, to: "decoder.up.$UP($1).block.$2." },
  { from: /^decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\./, to: "decoder.up.$UP($1).upsample.conv." },
  { from: /^(encoder|decoder)\.mid_block\.resnets\.0\./, to: "$1.mid.block_1." },
  { from: /^(encoder|decoder)\.mid_block\.resnets\.1\./, to: "$1.mid.block_2." },
  { from: /^(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm)\./, to: "$1.mid.attn_1.norm." },
  { from: /^(encoder|decoder)\.mid_block\.attentions\.0\.(to_q|query)\./, to: "$1.mid.attn_1.q." },
  { from: /^(encoder|decoder)\.mid_block\.attentions\.0\.(to_k|key)\./, to: "$1.mid.attn_1.k." },
  { from: /^(encoder|decoder)\.mid_block\.attentions\.0\.(to_v|value)\./, to: "$1.mid.attn_1.v." },
  { from: /^(encoder|decoder)\.mid_block\.attentions\.0\.(to_out\.0|proj_attn)\./, to: "$1.mid.attn_1.proj_out." },
];
const SUFFIX_RENAMES: readonly { readonly from: RegExp; readonly to: string }[] = [{ from: /\.conv_shortcut\.(weight|bias)$/, to: ".nin_shortcut.$1" }];

/** Where a checkpoint embeds its VAE: LDM/SGM checkpoints (and SD3 ComfyUI files) under this prefix… */
export const LDM_VAE_PREFIX = "first_stage_model.";
/** …and Flux files under this one. */
export const FLUX_VAE_PREFIX = "vae.";
/** Either prefix (a standalone VAE file may carry one already; it is stripped before mapping). */
export const CHECKPOINT_VAE_PREFIX = /^(first_stage_model\.|vae\.)/;

/**
 * Maps one VAE key (LDM or diffusers naming, optionally prefixed) to its LDM name, without
 * prefix. `upBlockCount` is the number of decoder up blocks (4 for SD/SDXL/Flux VAEs).
 */
export function vaeKeyToLdm(key: string, upBlockCount = 4): string {
  let name = key.replace(CHECKPOINT_VAE_PREFIX, "");
  for (const rule of RENAMES) {
    if (rule.from.test(name)) {
      name = name.replace(rule.from, rule.to).replace(/\$UP\((\d+)\)/, (_, n: string) => String(upBlockCount - 1 - Number(n)));
      break;
    }
  }
  for (const rule of SUFFIX_RENAMES) name = name.replace(rule.from, rule.to);
  return name;
}

/** Number of decoder up blocks in a diffusers-named VAE (LDM-named keys give the default 4). */
export function countUpBlocks(keys: readonly string[]): number {
  let max = -1;
  for (const k of keys) {
    const m = /^(?:first_stage_model\.|vae\.)?decoder\.up_blocks\.(\d+)\./.exec(k);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max < 0 ? 4 : max + 1;
}

/**
 * Diffusers stores the mid-block attention projections as linear [C, C]; LDM as 1×1 conv
 * [C, C, 1, 1]. The bytes are identical, so shapes that differ only by trailing 1s are compatible.
 */
export function shapesCompatibleIgnoringTrailingOnes(a: readonly number[], b: readonly number[]): boolean {
  const trim = (s: readonly number[]) => {
    let n = s.length;
    while (n > 1 && s[n - 1] === 1) n--;
    return s.slice(0, n);
  };
  const ta = trim(a);
  const tb = trim(b);
  return ta.length === tb.length && ta.every((d, i) => d === tb[i]);
}
