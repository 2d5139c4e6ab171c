export * from "./models/architecture-signatures.js";
export * from "./models/detect-architecture.js";
export * from "./models/block-maps.js";
export * from "./models/vae-key-map.js";
export * from "./models/key-rules.js";
