import type { ModelVersion } from "./schemas.js";

/** The fields stmerge remembers about a version (the cache's `civitai` object, snake_case as in the roadmap). */
export interface ModelVersionSummary {
  model_id: number | null;
  version_id: number;
  base_model: string | null;
  model_name: string | null;
  version_name: string | null;
  nsfw: boolean;
  trained_words: string[];
  type: string | null;
}

export function summarizeModelVersion(version: ModelVersion): ModelVersionSummary {
  return {
    model_id: version.modelId ?? null,
    version_id: version.id,
    base_model: version.baseModel ?? null,
    model_name: version.model?.name ?? null,
    version_name: version.name ?? null,
    nsfw: version.model?.nsfw ?? false,
    trained_words: version.trainedWords ?? [],
    type: version.model?.type ?? null,
  };
}

/**
 * The architecture name stmerge uses for a CivitAI `baseModel` ("SDXL 1.0" → "SDXL",
 * "Pony" → "Pony", "SD 1.5" → "SD1.5"), checked in the Python tool's order with Flux and SD3
 * added; undefined when unknown.
 */
export function baseModelToArchitecture(baseModel: string | null | undefined): string | undefined {
  if (!baseModel) return undefined;
  const b = baseModel.toLowerCase();
  if (b.includes("pony")) return "Pony";
  if (b.includes("illustrious") || b.includes("illus")) return "Illustrious";
  if (b.includes("noobai") || b.includes("noob")) return "NoobAI";
  if (b.includes("flux")) return "Flux";
  if (b.includes("sd 3") || b.includes("sd3")) return "SD3";
  if (b.includes("sdxl") || b.includes("xl")) return "SDXL";
  if (b.includes("sd 1") || b.includes("sd1")) return "SD1.5";
  if (b.includes("sd 2") || b.includes("sd2")) return "SD2.1";
  return undefined;
}
