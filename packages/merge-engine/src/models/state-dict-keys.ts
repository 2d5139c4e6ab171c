/** Wrapper keys of a torch checkpoint that hold the weights, in the order they are preferred. */
export const STATE_DICT_KEYS = ["state_dict", "params_ema", "params", "model", "module", "string_to_param"] as const;
