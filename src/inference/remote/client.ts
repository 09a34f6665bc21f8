/**
 * A small client of the Open Inference Protocol (KServe v2) REST API: model readiness, model metadata and infer,
 * with the binary tensor data extension for INT64 inputs and FP32 outputs. No npm client of the protocol exists
 * (Triton ships Python, C++ and Java ones); the HTTP underneath is undici's connection pool (keep-alive, one
 * connection per call in flight). Knows nothing of models, tasks or batching.
 */
import { Pool } from 'undici';
import {
  HEADER_LENGTH,
  ProtocolError,
  encodeMessage,
  int64Bytes,
  readFloatTensor,
  sliceBinary,
  splitBody,
  type InferenceRequest,
  type InferenceResponse,
  type ModelMetadata,
} from '../v2/tensors.ts';

/**
 * The remote could not be reached or did not answer in time (connection refused or reset, timeout, 502/503/504):
 * a call that may succeed later, and a failure of the remote for the circuit breaker.
 */
export class RemoteUnavailableError extends Error {
  override name = 'RemoteUnavailableError';
  constructor(
    message: string,
    /** Worth retrying at once: the call never reached the server (refused, reset before an answer). */
    readonly retryable: boolean,
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
  }
}

/** The remote answered, with an error about this call (4xx, 500): the same input would fail again. */
export class RemoteCallError extends Error {
  override name = 'RemoteCallError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface InferInput {
  name: string;
  shape: number[];
  /** Sent as INT64. */
  values: Int32Array;
}

export interface InferOutput {
  data: Float32Array;
  dims: number[];
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT']);

export class V2Client {
  private readonly pool: Pool;
  private readonly prefix: string;

  constructor(
    readonly url: string,
    private readonly opts: { connections: number; timeoutMs: number },
  ) {
    const u = new URL(url);
    this.prefix = u.pathname.replace(/\/+$/, '');
    this.pool = new Pool(u.origin, { connections: opts.connections, keepAliveTimeout: 30_000, connectTimeout: opts.timeoutMs });
  }

  private modelPath(model: string, version?: string): string {
    return `${this.prefix}/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`;
  }

  /** One HTTP exchange under the call timeout; transport failures become RemoteUnavailableError. */
  private async call(method: 'GET' | 'POST', path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const signal = AbortSignal.timeout(this.opts.timeoutMs);
    try {
      const res = await this.pool.request({ method, path, body, headers, signal });
      const chunks: Buffer[] = [];
      for await (const c of res.body) chunks.push(c as Buffer);
      return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
    } catch (err) {
      if (signal.aborted) throw new RemoteUnavailableError(`${method} ${this.url}${path}: no answer within ${this.opts.timeoutMs} ms`, false, { cause: err });
      const code = (err as { code?: string }).code ?? '';
      throw new RemoteUnavailableError(`${method} ${this.url}${path}: ${code || (err as Error).message}`, CONNECT_CODES.has(code), { cause: err });
    }
  }

  /** The protocol's error body `{ "error": "..." }`, or the start of whatever came back. */
  private static errorText(body: Buffer): string {
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { error?: unknown };
      if (typeof parsed.error === 'string') return parsed.error;
      if (parsed.error && typeof parsed.error === 'object' && typeof (parsed.error as { message?: unknown }).message === 'string') return (parsed.error as { message: string }).message;
    } catch {
      /* not JSON */
    }
    return body.toString('utf8').slice(0, 200);
  }

  private static check(res: { status: number; body: Buffer }, what: string): void {
    if (res.status === 200) return;
    const text = `${what}: HTTP ${res.status}: ${V2Client.errorText(res.body)}`;
    if (res.status === 502 || res.status === 503 || res.status === 504) throw new RemoteUnavailableError(text, false);
    throw new RemoteCallError(text, res.status);
  }

  /** GET /v2/models/{model}[/versions/{v}]/ready: true on 200, false on any other answer. */
  async modelReady(model: string, version?: string): Promise<boolean> {
    const res = await this.call('GET', `${this.modelPath(model, version)}/ready`);
    return res.status === 200;
  }

  async metadata(model: string, version?: string): Promise<ModelMetadata> {
    const res = await this.call('GET', this.modelPath(model, version));
    V2Client.check(res, `model metadata of "${model}"`);
    try {
      return JSON.parse(res.body.toString('utf8')) as ModelMetadata;
    } catch {
      throw new RemoteCallError(`model metadata of "${model}" is not JSON`, res.status);
    }
  }

  /**
   * One infer call: INT64 inputs, FP32 outputs by name. With `binary`, inputs and outputs travel as binary
   * tensor data (Triton's extension); otherwise as JSON arrays.
   */
  async infer(model: string, version: string | undefined, inputs: InferInput[], outputs: string[], binary: boolean): Promise<Record<string, InferOutput>> {
    const request: InferenceRequest = {
      inputs: inputs.map((t) => ({
        name: t.name,
        shape: t.shape,
        datatype: 'INT64',
        ...(binary ? { parameters: { binary_data_size: t.values.length * 8 } } : { data: Array.from(t.values) }),
      })),
      outputs: outputs.map((name) => ({ name, parameters: { binary_data: binary } })),
    };
    const { body, headerLength } = encodeMessage(request, binary ? inputs.map((t) => int64Bytes(t.values)) : []);
    const headers: Record<string, string> = { 'content-type': binary ? 'application/octet-stream' : 'application/json' };
    if (headerLength !== undefined) headers[HEADER_LENGTH] = String(headerLength);
    const res = await this.call('POST', `${this.modelPath(model, version)}/infer`, body, headers);
    V2Client.check(res, `infer on "${model}"`);
    try {
      const { header, binary: rest } = splitBody(res.body, res.headers[HEADER_LENGTH]);
      const reply = header as InferenceResponse;
      if (!reply || !Array.isArray(reply.outputs)) throw new ProtocolError('the answer has no "outputs"');
      const parts = sliceBinary(reply.outputs, rest, 'outputs');
      const out: Record<string, InferOutput> = {};
      reply.outputs.forEach((o, i) => {
        out[o.name] = { data: readFloatTensor(o, parts[i], `outputs[${i}] (${o.name})`), dims: o.shape };
      });
      const missing = outputs.filter((n) => !out[n]);
      if (missing.length) throw new ProtocolError(`the answer lacks output ${missing.join(', ')}`);
      return out;
    } catch (err) {
      if (err instanceof ProtocolError) throw new RemoteCallError(`infer on "${model}": ${err.message}`, res.status);
      throw err;
    }
  }

  /** Drops the connections, failing calls still in flight. */
  async close(): Promise<void> {
    await this.pool.destroy().catch(() => undefined);
  }
}

