import { describe, expect, it } from "vitest";
import { DTYPES, DTYPE_SIZE, dominantFloatDType, dtypeSize, dtypeToPrecision, isDType, isFloatDType, PRECISION_DTYPE, shapeElementCount } from "./dtypes.js";

describe("dtypes", () => {
  it("lists the 15 safetensors dtypes with their sizes", () => {
    expect(DTYPES).toHaveLength(15);
    expect(DTYPES.map((d) => DTYPE_SIZE[d])).toEqual([8, 4, 2, 2, 1, 1, 8, 4, 2, 1, 8, 4, 2, 1, 1]);
    expect(DTYPES.filter(isFloatDType)).toEqual(["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"]);
  });

  it("recognises names and refuses others", () => {
    expect(isDType("BF16")).toBe(true);
    expect(isDType("bf16")).toBe(false);
    expect(isDType("__proto__")).toBe(false);
    expect(() => dtypeSize("F4" as "F32")).toThrow(expect.objectContaining({ code: "DTYPE_UNKNOWN" }));
  });

  it("counts elements, the empty shape being a scalar", () => {
    expect(shapeElementCount([])).toBe(1);
    expect(shapeElementCount([3, 0, 2])).toBe(0);
    expect(shapeElementCount([320, 4, 3, 3])).toBe(11520);
  });

  it("maps precisions", () => {
    expect(PRECISION_DTYPE.fp16).toBe("F16");
    expect(dtypeToPrecision("BF16")).toBe("bf16");
    expect(dtypeToPrecision("F8_E4M3")).toBeUndefined();
  });
});

describe("dominantFloatDType", () => {
  it("picks the float dtype holding the most bytes, ignoring integers", () => {
    expect(dominantFloatDType([{ dtype: "F32", byteLength: 10 }, { dtype: "F16", byteLength: 100 }, { dtype: "I64", byteLength: 1000 }])).toBe("F16");
    expect(dominantFloatDType([{ dtype: "BF16", byteLength: 4 }, { dtype: "BF16", byteLength: 4 }, { dtype: "F32", byteLength: 6 }])).toBe("BF16");
  });

  it("is undefined without float tensors", () => {
    expect(dominantFloatDType([{ dtype: "I64", byteLength: 8 }])).toBeUndefined();
    expect(dominantFloatDType([])).toBeUndefined();
  });
});
