/**
 * JSON text of a float32 vector, written byte by byte: each number with 8 significant digits, or 9 where 8 do not read
 * back as the same float32, trailing zeros dropped. Any JSON parser (through a double, as JavaScript and Python parse)
 * gives back exactly the float32 the model computed, which is all the precision there is. TEI prints its float32s the
 * same way, with the shortest such text (ryu); this one can be a digit longer where fewer than 8 would also read back.
 * JavaScript's own printing (`Float32Array.prototype.join`) writes the 17 digits of the
 * float32's double: for 256 numbers ~5.3 KB instead of ~3.1 KB, at ~2.7x the CPU (the largest single cost of an
 * embeddings request on the event loop before this).
 */
import type { FastifyReply } from 'fastify';

const P10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
const F32 = new Float32Array(1);
const BITS = new Uint32Array(F32.buffer);
const DIGITS = new Uint8Array(16);
let scratch = Buffer.allocUnsafe(1 << 16);

const ZERO = 48;
const MINUS = 45;
const POINT = 46;

/** `[n,n,...]`, or undefined when a value is NaN or infinite (JSON has no text for them). */
export function float32ArrayJson(v: Float32Array): string | undefined {
  // 1 sign + 9 digits + point + up to 5 leading zeros + comma, or JavaScript's own text (at most 24) for the rare rest
  const need = v.length * 26 + 2;
  if (scratch.length < need) scratch = Buffer.allocUnsafe(need * 2);
  const out = scratch;
  let n = 0;
  out[n++] = 91; // [
  for (let i = 0; i < v.length; i++) {
    if (i) out[n++] = 44; // ,
    const x = v[i];
    if (x === 0) {
      out[n++] = ZERO; // -0 too, as JavaScript prints it
      continue;
    }
    let a = x;
    if (x < 0) {
      out[n++] = MINUS;
      a = -x;
    }
    if (!(a >= 1e-6 && a < 1e7)) {
      // tiny, huge or not a number: JavaScript's own text (exponent form where it uses one)
      if (!Number.isFinite(a)) return undefined;
      const s = String(a);
      for (let c = 0; c < s.length; c++) out[n++] = s.charCodeAt(c);
      continue;
    }
    // The decimal exponent from the binary one (it can be one too low: the range check below corrects it).
    F32[0] = a;
    const e = Math.floor(((BITS[0] >>> 23) - 127) * 0.3010299956639812);
    let j = 7 - e; // digits after the point for 8 significant ones (a < 1e7: never negative)
    let m = Math.round(a * P10[j]);
    if (m >= 1e8) m = Math.round(a * P10[--j]);
    else if (m < 1e7) m = Math.round(a * P10[++j]);
    // m / 10^j is exactly the double a parser makes of the text; 9 digits always read back.
    if (Math.fround(m / P10[j]) !== a) m = Math.round(a * P10[++j]);
    let q = m | 0;
    while (j > 0) {
      const t = (q / 10) | 0;
      if (q - t * 10 !== 0) break;
      q = t;
      j--;
    }
    let d = 0;
    while (q > 0) {
      const t = (q / 10) | 0;
      DIGITS[d++] = ZERO + q - t * 10;
      q = t;
    }
    // d digits, least significant first; the last j of them go after the point
    if (j >= d) {
      out[n++] = ZERO;
      out[n++] = POINT;
      for (let z = j - d; z > 0; z--) out[n++] = ZERO;
      while (d > 0) out[n++] = DIGITS[--d];
    } else {
      while (d > j) out[n++] = DIGITS[--d];
      if (j > 0) {
        out[n++] = POINT;
        while (d > 0) out[n++] = DIGITS[--d];
      }
    }
  }
  out[n++] = 93; // ]
  return out.toString('latin1', 0, n);
}

const printed = new WeakMap<Float32Array, string | undefined>();

/**
 * float32ArrayJson, kept beside the vector for as long as the vector lives: a vector served from the embedding cache
 * is the cached Float32Array itself, so a repeated input's numbers are printed once, not per request (printing them
 * was the largest cost of a cache hit).
 */
export function vectorJson(v: Float32Array): string | undefined {
  let t = printed.get(v);
  if (t === undefined && !printed.has(v)) {
    t = float32ArrayJson(v);
    printed.set(v, t);
  }
  return t;
}

/**
 * A route's answer when it is vectors (a Float32Array, or a list of them): their JSON text, or undefined when it is
 * something else or a value has no JSON text (the route then answers through its schema as before).
 */
export function vectorsJson(answer: unknown): string | undefined {
  if (answer instanceof Float32Array) return vectorJson(answer);
  if (!Array.isArray(answer) || !answer.every((v) => v instanceof Float32Array)) return undefined;
  let text = '[';
  for (let i = 0; i < answer.length; i++) {
    const v = vectorJson(answer[i] as Float32Array);
    if (v === undefined) return undefined;
    text += i ? `,${v}` : v;
  }
  return `${text}]`;
}

/**
 * `answer` with its vectors (a Float32Array, or those of a list) as plain number[] (what the schema serializers print);
 * any other answer as it is, not copied.
 */
export function plainVectors(answer: unknown): unknown {
  if (answer instanceof Float32Array) return Array.from(answer);
  return Array.isArray(answer) && answer.some((v) => v instanceof Float32Array) ? answer.map(plainVectors) : answer;
}

export const JSON_UTF8 = 'application/json; charset=utf-8';

/** The answer for a handler to return: vectors as their JSON text (vectorsJson), anything else through the route's schema. */
export function replyVectors(reply: FastifyReply, answer: unknown): unknown {
  const text = vectorsJson(answer);
  return text !== undefined ? reply.type(JSON_UTF8).send(text) : plainVectors(answer);
}
