import { z } from "zod";

// CivitAI adds fields over time: every object is loose (unknown fields kept) and every field the
// client does not strictly need is optional or nullable, so a new or missing field never breaks a look-up.
const optionalString = z.string().nullish();

export const fileHashesSchema = z.looseObject({
  AutoV1: optionalString,
  AutoV2: optionalString,
  AutoV3: optionalString,
  SHA256: optionalString,
  CRC32: optionalString,
  BLAKE3: optionalString,
});

export const modelFileSchema = z.looseObject({
  id: z.number().nullish(),
  name: optionalString,
  type: optionalString,
  sizeKB: z.number().nullish(),
  primary: z.boolean().nullish(),
  downloadUrl: optionalString,
  pickleScanResult: optionalString,
  virusScanResult: optionalString,
  metadata: z.looseObject({ format: optionalString, size: optionalString, fp: optionalString }).nullish(),
  hashes: fileHashesSchema.nullish(),
});

export const modelVersionSchema = z.looseObject({
  id: z.number(),
  modelId: z.number().nullish(),
  name: optionalString,
  description: optionalString,
  baseModel: optionalString,
  baseModelType: optionalString,
  air: optionalString,
  status: optionalString,
  nsfwLevel: z.number().nullish(),
  createdAt: optionalString,
  publishedAt: optionalString,
  trainedWords: z.array(z.string()).nullish(),
  downloadUrl: optionalString,
  model: z.looseObject({ name: optionalString, type: optionalString, nsfw: z.boolean().nullish(), poi: z.boolean().nullish(), mode: optionalString }).nullish(),
  files: z.array(modelFileSchema).nullish(),
  images: z.array(z.unknown()).nullish(),
  stats: z.looseObject({}).nullish(),
});

export const modelSchema = z.looseObject({
  id: z.number(),
  name: z.string(),
  description: optionalString,
  type: optionalString,
  nsfw: z.boolean().nullish(),
  mode: optionalString,
  tags: z.array(z.union([z.string(), z.looseObject({ name: z.string() })])).nullish(),
  creator: z.looseObject({ username: optionalString }).nullish(),
  stats: z.looseObject({}).nullish(),
  modelVersions: z.array(modelVersionSchema).nullish(),
});

export const modelVersionListSchema = z.array(modelVersionSchema);

export type FileHashesResponse = z.infer<typeof fileHashesSchema>;
export type ModelFileResponse = z.infer<typeof modelFileSchema>;
export type ModelVersion = z.infer<typeof modelVersionSchema>;
export type Model = z.infer<typeof modelSchema>;
