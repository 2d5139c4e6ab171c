/**
 * Hostile and borderline safetensors headers, shared by the unit test (expected codes) and the
 * oracle test (Python safetensors must agree on accept/refuse). Each has one F32 tensor "a" of 4 bytes.
 */
const entry = (extra = "") => `{"dtype":"F32","shape":[1],"data_offsets":[0,4]${extra}}`;
const nested = (levels: number) => `${"[".repeat(levels)}${"]".repeat(levels)}`;

export const REFERENCE_HEADER_CASES: readonly { readonly name: string; readonly header: string; readonly code: string | null }[] = [
  { name: "float in shape", header: '{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', code: "SAFETENSORS_BAD_SHAPE" },
  { name: "float in data_offsets", header: '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', code: "SAFETENSORS_BAD_OFFSETS" },
  { name: "exponent in shape", header: '{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}', code: "SAFETENSORS_BAD_SHAPE" },
  { name: "__metadata__ null", header: `{"__metadata__":null,"a":${entry()}}`, code: null },
  { name: "lone high surrogate in a tensor name", header: `{"a\\ud800":${entry()}}`, code: "SAFETENSORS_BAD_NAME" },
  { name: "lone low surrogate in metadata", header: `{"__metadata__":{"k":"\\udc00"},"a":${entry()}}`, code: "SAFETENSORS_BAD_METADATA" },
  { name: "unknown field nested to depth 127", header: `{"a":${entry(`,"x":${nested(125)}`)}}`, code: null },
  { name: "unknown field nested to depth 128", header: `{"a":${entry(`,"x":${nested(126)}`)}}`, code: "SAFETENSORS_HEADER_TOO_DEEP" },
  { name: "unknown float field", header: `{"a":${entry(',"scale":1.5')}}`, code: null },
];
