/**
 * Small helpers for route tests: JSON and multipart requests through `app.inject`, and the one error body.
 */
import { expect } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

export interface Sent {
  status: number;
  headers: LightMyRequestResponse['headers'];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  raw: string;
}

function parse(res: LightMyRequestResponse): Sent {
  let body: unknown;
  try {
    body = res.json();
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body, raw: res.body };
}

/** POST a JSON value (or a raw string sent as is) with its content type. */
export async function postJson(app: FastifyInstance, url: string, payload: unknown, contentType = 'application/json'): Promise<Sent> {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return parse(await app.inject({ method: 'POST', url, headers: { 'content-type': contentType }, payload: body }));
}

/** POST a 200 is expected from: fails with the error body in the message otherwise. */
export async function ok(app: FastifyInstance, url: string, payload: unknown): Promise<Sent> {
  const res = await postJson(app, url, payload);
  expect(res.status, `${url} ${JSON.stringify(payload).slice(0, 200)} -> ${res.raw.slice(0, 500)}`).toBe(200);
  return res;
}

export interface Part {
  name: string;
  /** Present: a file part with this file name. */
  filename?: string;
  contentType?: string;
  content: string | Buffer;
}

/** A multipart/form-data body and its content type, parts in the order given. */
export function multipart(parts: Part[]): { payload: Buffer; contentType: string } {
  const boundary = `----gw-test-${Math.random().toString(16).slice(2)}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition = `form-data; name="${p.name}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
    const type = p.contentType ?? (p.filename === undefined ? undefined : 'application/json');
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.content) ? p.content : Buffer.from(p.content));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { payload: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

export async function postMultipart(app: FastifyInstance, url: string, parts: Part[], headers: Record<string, string> = {}): Promise<Sent> {
  const { payload, contentType } = multipart(parts);
  return parse(await app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': contentType }, payload }));
}

/** The one error body, exactly: `{ error: { code, message, details? } }` and nothing else. */
export function expectErrorBody(res: Sent, status: number, code: string, message?: RegExp): void {
  const where = `${status} ${code} expected, got ${res.status} ${res.raw.slice(0, 400)}`;
  expect(res.status, where).toBe(status);
  expect(Object.keys(res.body ?? {}), where).toEqual(['error']);
  const keys = Object.keys(res.body.error).sort();
  expect(keys.filter((k) => k !== 'details'), where).toEqual(['code', 'message']);
  expect(res.body.error.code, where).toBe(code);
  expect(typeof res.body.error.message).toBe('string');
  if (message) expect(res.body.error.message, where).toMatch(message);
}

/** Live and ready: the app survived whatever the test sent it. */
export async function expectHealthy(app: FastifyInstance): Promise<void> {
  expect((await app.inject('/health/live')).statusCode).toBe(200);
  const ready = await app.inject('/health/ready');
  expect(ready.statusCode, ready.body).toBe(200);
}

/** Float32 little-endian base64 (the OpenAI `encoding_format: "base64"`) to numbers. */
export function decodeBase64Floats(b64: string): number[] {
  const buf = Buffer.from(b64, 'base64');
  const out: number[] = [];
  for (let i = 0; i < buf.length; i += 4) out.push(buf.readFloatLE(i));
  return out;
}

export const l2 = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

export function cosineOf(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return dot / (l2(a) * l2(b));
}
