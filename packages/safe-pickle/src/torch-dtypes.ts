import type { DType } from "@stmerge/core-tensors";

/** A torch dtype as stmerge knows it: its safetensors dtype (when safetensors can hold it) and element size. */
export interface TorchDTypeInfo {
  readonly torchName: string;
  readonly dtype: DType | undefined;
  readonly elementSize: number;
}

const info = (torchName: string, dtype: DType | undefined, elementSize: number): TorchDTypeInfo => ({ torchName, dtype, elementSize });

/** Legacy typed storage classes (`torch.FloatStorage`, ...) → element dtype. */
export const TORCH_STORAGE_CLASSES: ReadonlyMap<string, TorchDTypeInfo> = new Map([
  ["DoubleStorage", info("float64", "F64", 8)],
  ["FloatStorage", info("float32", "F32", 4)],
  ["HalfStorage", info("float16", "F16", 2)],
  ["BFloat16Storage", info("bfloat16", "BF16", 2)],
  ["LongStorage", info("int64", "I64", 8)],
  ["IntStorage", info("int32", "I32", 4)],
  ["ShortStorage", info("int16", "I16", 2)],
  ["CharStorage", info("int8", "I8", 1)],
  ["ByteStorage", info("uint8", "U8", 1)],
  ["BoolStorage", info("bool", "BOOL", 1)],
  ["ComplexFloatStorage", info("complex64", undefined, 8)],
  ["ComplexDoubleStorage", info("complex128", undefined, 16)],
  ["QInt8Storage", info("qint8", undefined, 1)],
  ["QUInt8Storage", info("quint8", undefined, 1)],
  ["QInt32Storage", info("qint32", undefined, 4)],
  ["QUInt4x2Storage", info("quint4x2", undefined, 1)],
  ["QUInt2x4Storage", info("quint2x4", undefined, 1)],
]);

/** `torch.<dtype>` globals (used by `_rebuild_tensor_v3` with untyped storages). */
export const TORCH_DTYPE_GLOBALS: ReadonlyMap<string, TorchDTypeInfo> = new Map([
  ["float64", info("float64", "F64", 8)],
  ["double", info("float64", "F64", 8)],
  ["float32", info("float32", "F32", 4)],
  ["float", info("float32", "F32", 4)],
  ["float16", info("float16", "F16", 2)],
  ["half", info("float16", "F16", 2)],
  ["bfloat16", info("bfloat16", "BF16", 2)],
  ["float8_e4m3fn", info("float8_e4m3fn", "F8_E4M3", 1)],
  ["float8_e5m2", info("float8_e5m2", "F8_E5M2", 1)],
  ["float8_e4m3fnuz", info("float8_e4m3fnuz", undefined, 1)],
  ["float8_e5m2fnuz", info("float8_e5m2fnuz", undefined, 1)],
  ["float8_e8m0fnu", info("float8_e8m0fnu", undefined, 1)],
  ["int64", info("int64", "I64", 8)],
  ["long", info("int64", "I64", 8)],
  ["int32", info("int32", "I32", 4)],
  ["int", info("int32", "I32", 4)],
  ["int16", info("int16", "I16", 2)],
  ["short", info("int16", "I16", 2)],
  ["int8", info("int8", "I8", 1)],
  ["uint8", info("uint8", "U8", 1)],
  ["uint16", info("uint16", "U16", 2)],
  ["uint32", info("uint32", "U32", 4)],
  ["uint64", info("uint64", "U64", 8)],
  ["bool", info("bool", "BOOL", 1)],
  ["complex32", info("complex32", undefined, 4)],
  ["complex64", info("complex64", undefined, 8)],
  ["complex128", info("complex128", undefined, 16)],
]);
