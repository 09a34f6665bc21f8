/**
 * The Open Inference Protocol (KServe v2) on the wire, both directions, pure: datatypes, shapes, JSON tensor
 * data, and the binary tensor data extension (the JSON header, then each binary tensor in order, its length in
 * Inference-Header-Content-Length). The gateway's /v2 routes and its remote backend client share this file, so
 * what one writes the other reads. No HTTP, no ONNX Runtime.
 */

/** Bytes per element of each v2 datatype (BYTES is variable and not served here). */
export const DATATYPE_SIZE: Record<string, number> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
};

const FROM_ONNX: Record<string, string> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  uint16: 'UINT16',
  uint32: 'UINT32',
  uint64: 'UINT64',
  int8: 'INT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  float16: 'FP16',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

/** The v2 datatype of an ONNX Runtime element type (`int64` → `INT64`); undefined for non-tensors. */
export function datatypeOfOnnx(type: string): string | undefined {
  return FROM_ONNX[type];
}

/** The ONNX Runtime element type of a v2 datatype (`FP32` → `float32`). */
export function onnxTypeOf(datatype: string): string | undefined {
  return Object.entries(FROM_ONNX).find(([, d]) => d === datatype)?.[0];
}

/** Metadata shape: a dynamic axis (a symbolic name, or a negative number) is -1. */
export function metadataShape(dims: readonly (number | string)[]): number[] {
  return dims.map((d) => (typeof d === 'number' && d >= 0 ? d : -1));
}

export type Parameters = Record<string, string | number | boolean>;

export interface RequestInput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Parameters;
  data?: unknown[];
}

export interface RequestOutput {
  name: string;
  parameters?: Parameters;
}

export interface InferenceRequest {
  id?: string;
  parameters?: Parameters;
  inputs: RequestInput[];
  outputs?: RequestOutput[];
}

export interface ResponseOutput {
  name: string;
  shape: number[];
  datatype: string;
  parameters?: Parameters;
  data?: unknown[];
}

export interface InferenceResponse {
  model_name: string;
  model_version?: string;
  id?: string;
  parameters?: Parameters;
  outputs: ResponseOutput[];
}

export interface MetadataTensor {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions?: string[];
  platform: string;
  inputs: MetadataTensor[];
  outputs: MetadataTensor[];
}

/** A malformed message: the text says which field; the server answers it with 400, the client as a remote error. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

export const HEADER_LENGTH = 'inference-header-content-length';

/** Elements of a shape; throws unless every dimension is a non-negative integer and the count is a safe one. */
export function elementCount(shape: readonly number[], where: string): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ProtocolError(`${where}.shape must hold non-negative integers, got ${JSON.stringify(shape)}`);
    n *= d;
  }
  if (!Number.isSafeInteger(n)) throw new ProtocolError(`${where}.shape ${JSON.stringify(shape)} has more elements than any body can hold`);
  return n;
}

/**
 * Splits a body into its JSON header and the binary tensor data after it. Without Inference-Header-Content-Length
 * the whole body is the JSON.
 */
export function splitBody(body: Buffer, headerLength: string | string[] | undefined): { header: unknown; binary: Buffer } {
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    const raw = Array.isArray(headerLength) ? headerLength[0] : headerLength;
    const n = /^\d+$/.test(raw ?? '') ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n > body.length) throw new ProtocolError(`Inference-Header-Content-Length must be a byte count of at most the body length (${body.length}), got ${JSON.stringify(raw)}`);
    jsonLength = n;
  }
  let header: unknown;
  try {
    header = JSON.parse(body.subarray(0, jsonLength).toString('utf8'));
  } catch {
    throw new ProtocolError(headerLength === undefined ? 'body is not valid JSON' : 'the first Inference-Header-Content-Length bytes of the body are not valid JSON');
  }
  return { header, binary: body.subarray(jsonLength) };
}

/**
 * Flattens `data` given in its natural nested form or already flat (the protocol allows both). Iterative, in
 * order: a hostile nesting depth cannot exhaust the stack.
 */
export function flatten(data: unknown, where: string): unknown[] {
  if (!Array.isArray(data)) throw new ProtocolError(`${where}.data must be an array`);
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const stack: { list: unknown[]; at: number }[] = [{ list: data, at: 0 }];
  while (stack.length) {
    const top = stack[stack.length - 1];
    if (top.at >= top.list.length) {
      stack.pop();
      continue;
    }
    const v = top.list[top.at++];
    if (Array.isArray(v)) stack.push({ list: v, at: 0 });
    else out.push(v);
  }
  return out;
}

/** The binary_data_size parameter of a tensor, if it carries its data in the binary part. */
export function binarySize(t: { parameters?: Parameters }, where: string): number | undefined {
  const size = t.parameters?.binary_data_size;
  if (size === undefined) return undefined;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ProtocolError(`${where}.parameters.binary_data_size must be a byte count`);
  return size;
}

/**
 * Reads the binary parts of `tensors` in order: each one with binary_data_size takes that many bytes. The sizes
 * must add up to the binary part exactly.
 */
export function sliceBinary(tensors: readonly { parameters?: Parameters }[], binary: Buffer, what: string): (Buffer | undefined)[] {
  let at = 0;
  const parts = tensors.map((t, i) => {
    const size = binarySize(t, `${what}[${i}]`);
    if (size === undefined) return undefined;
    if (at + size > binary.length) throw new ProtocolError(`${what}[${i}].parameters.binary_data_size is ${size} bytes but only ${binary.length - at} bytes of binary data are left`);
    const part = binary.subarray(at, at + size);
    at += size;
    return part;
  });
  if (at !== binary.length) throw new ProtocolError(`${binary.length - at} bytes of binary data follow the JSON that no ${what} claims (binary_data_size)`);
  return parts;
}

/** Integer tensor data (INT64, INT32 and smaller) as Int32Array: token ids and masks; values outside int32 are refused. */
export function readIntTensor(t: RequestInput, binary: Buffer | undefined, where: string): Int32Array {
  const n = elementCount(t.shape, where);
  const size = DATATYPE_SIZE[t.datatype];
  if (!/^U?INT(8|16|32|64)$/.test(t.datatype)) throw new ProtocolError(`${where}.datatype must be INT64 (or another integer type), got ${JSON.stringify(t.datatype)}`);
  if (binary) {
    if (binary.length !== n * size) throw new ProtocolError(`${where} has ${binary.length} bytes of binary data; shape ${JSON.stringify(t.shape)} of ${t.datatype} needs ${n * size}`);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const v = readInt(binary, i * size, t.datatype);
      if (v < -2147483648 || v > 2147483647) throw new ProtocolError(`${where} holds ${v}, outside the token id range`);
      out[i] = v;
    }
    return out;
  }
  if (t.data === undefined) throw new ProtocolError(`${where} has neither "data" nor parameters.binary_data_size`);
  const flat = flatten(t.data, where);
  if (flat.length !== n) throw new ProtocolError(`${where}.data has ${flat.length} elements; shape ${JSON.stringify(t.shape)} needs ${n}`);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) throw new ProtocolError(`${where}.data[${i}] must be an integer, got ${JSON.stringify(v)}`);
    out[i] = v;
  }
  return out;
}

function readInt(buf: Buffer, at: number, datatype: string): number {
  switch (datatype) {
    case 'INT64': {
      // Exact for ids: the high word is the sign extension of the low one, else the value is out of range.
      const lo = buf.readInt32LE(at);
      const hi = buf.readInt32LE(at + 4);
      return hi === (lo < 0 ? -1 : 0) ? lo : hi * 4294967296 + (lo >>> 0);
    }
    case 'UINT64': {
      const hi = buf.readUInt32LE(at + 4);
      return hi === 0 ? buf.readUInt32LE(at) : Infinity;
    }
    case 'INT32':
      return buf.readInt32LE(at);
    case 'UINT32':
      return buf.readUInt32LE(at);
    case 'INT16':
      return buf.readInt16LE(at);
    case 'UINT16':
      return buf.readUInt16LE(at);
    case 'INT8':
      return buf.readInt8(at);
    default:
      return buf.readUInt8(at);
  }
}

/** Floating-point tensor data (FP32, FP64, FP16) as Float32Array. */
export function readFloatTensor(t: { shape: number[]; datatype: string; data?: unknown[] }, binary: Buffer | undefined, where: string): Float32Array {
  const n = elementCount(t.shape, where);
  if (binary) {
    const size = DATATYPE_SIZE[t.datatype];
    if (size === undefined || !t.datatype.startsWith('FP')) throw new ProtocolError(`${where}.datatype must be FP32, FP64 or FP16, got ${JSON.stringify(t.datatype)}`);
    if (binary.length !== n * size) throw new ProtocolError(`${where} has ${binary.length} bytes of binary data; shape ${JSON.stringify(t.shape)} of ${t.datatype} needs ${n * size}`);
    if (t.datatype === 'FP32') {
      // Copied into a fresh, aligned buffer: the part may start at any byte of the body.
      const out = new Float32Array(n);
      new Uint8Array(out.buffer).set(binary);
      return out;
    }
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = t.datatype === 'FP64' ? binary.readDoubleLE(i * 8) : halfToFloat(binary.readUInt16LE(i * 2));
    return out;
  }
  if (t.data === undefined) throw new ProtocolError(`${where} has neither "data" nor parameters.binary_data_size`);
  const flat = flatten(t.data, where);
  if (flat.length !== n) throw new ProtocolError(`${where}.data has ${flat.length} elements; shape ${JSON.stringify(t.shape)} needs ${n}`);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = flat[i];
    if (typeof v !== 'number') throw new ProtocolError(`${where}.data[${i}] must be a number, got ${JSON.stringify(v)}`);
    out[i] = v;
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** INT64 little-endian bytes of int32 values (the sign extended into the high word). */
export function int64Bytes(values: Int32Array): Buffer {
  const words = new Int32Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    words[2 * i] = values[i];
    words[2 * i + 1] = values[i] < 0 ? -1 : 0;
  }
  return Buffer.from(words.buffer);
}

/** FP32 little-endian bytes of a Float32Array, without a copy. */
export function float32Bytes(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * One message on the wire: the JSON alone, or (when any tensor is binary) the JSON followed by the binary parts,
 * with the JSON's byte length for Inference-Header-Content-Length.
 */
export function encodeMessage(header: object, parts: Buffer[]): { body: Buffer; headerLength?: number } {
  const json = Buffer.from(JSON.stringify(header));
  if (parts.length === 0) return { body: json };
  return { body: Buffer.concat([json, ...parts]), headerLength: json.length };
}
