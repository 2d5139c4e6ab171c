export * from "./hash-algorithms.js";
export * from "./blake3.js";
export * from "./range-hashers.js";
export * from "./hash-file.js";
