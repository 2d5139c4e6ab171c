import type { KeyLayout } from "./architecture-signatures.js";

/**
 * Keys whose values are indices, schedules or markers: copied from the first model, never
 * averaged (averaging CLIP position_ids turns 0..76 into 75.9975-style floats that later
 * truncate; schedule buffers are identical by definition). Non-float dtypes are copied too.
 */
export const COPY_FROM_FIRST_KEYS: readonly RegExp[] = [
  /(^|\.)position_ids$/,
  /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod|log_one_minus_alphas_cumprod|sqrt_recip_alphas_cumprod|sqrt_recipm1_alphas_cumprod|posterior_variance|posterior_log_variance_clipped|posterior_mean_coef1|posterior_mean_coef2)$/,
  /^(v_pred|ztsnr|edm_vpred\.sigma_max|edm_vpred\.sigma_min)$/,
  /^model_ema\.(decay|num_updates)$/,
  /(^|\.)model_sampling\.sigmas$/,
];

export function isCopyFromFirstKey(key: string): boolean {
  return COPY_FROM_FIRST_KEYS.some((p) => p.test(key));
}

/**
 * Adaptive pruning of merge output, chosen by key layout:
 * - full checkpoints (ldm, sgm, comfyui, flux, kohya): keep the model's components and its
 *   prediction markers, drop EMA copies, schedule buffers and training state;
 * - anything else: conservative, drop only training artefacts named as whole path segments
 *   (the Python tool's plain substring "ema" also removed e.g. "schema").
 */
export interface PruneRule {
  readonly keep?: readonly RegExp[];
  readonly drop: readonly RegExp[];
}

const MARKERS = /^(v_pred|ztsnr|edm_vpred\.sigma_max|edm_vpred\.sigma_min)$/;
const TRAINING = /(^|[._])(optimizer|optimizer_state|lr_scheduler|global_step|epoch|training_state|loss)([._]|$)/;

export const PRUNE_RULES: Readonly<Record<"checkpoint" | "conservative", PruneRule>> = {
  checkpoint: {
    keep: [/^model\.diffusion_model\./, /^first_stage_model\./, /^cond_stage_model\./, /^conditioner\./, /^text_encoders\./, /^vae\./, /^unet\./, /^te[12]?\./, MARKERS],
    drop: [/^model_ema\./, /(^|\.)model_sampling\./],
  },
  conservative: {
    drop: [/^model_ema\./, TRAINING],
  },
};

const CHECKPOINT_LAYOUTS: ReadonlySet<KeyLayout> = new Set(["ldm", "sgm", "comfyui", "flux", "kohya"]);

/** True when `key` should be removed from merge output under the rules for `layout`. */
export function shouldPruneKey(key: string, layout: KeyLayout): boolean {
  const rule = CHECKPOINT_LAYOUTS.has(layout) ? PRUNE_RULES.checkpoint : PRUNE_RULES.conservative;
  if (rule.drop.some((p) => p.test(key))) return !MARKERS.test(key);
  if (rule.keep) return !rule.keep.some((p) => p.test(key));
  return false;
}
