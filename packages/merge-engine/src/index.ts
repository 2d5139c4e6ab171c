export * from "./models/architecture-signatures.js";
export * from "./models/detect-architecture.js";
