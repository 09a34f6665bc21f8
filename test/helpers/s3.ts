/**
 * A real S3 server for tests (s3rver, in-process, on a free port, data in a temp folder), upload
 * helpers, and an HTTP proxy that counts requests and can cut or stall the body of chosen GETs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** s3rver's fixed credentials; the code under test reads them from the environment like any AWS credentials. */
export const S3RVER_KEY = 'S3RVER';

interface S3rverInstance {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
}
type S3rverCtor = new (opts: Record<string, unknown>) => S3rverInstance;
const requireCjs = createRequire(import.meta.url);

export interface S3Server {
  endpoint: string;
  port: number;
  client: S3Client;
  close(): Promise<void>;
}

/** Sets the standard AWS environment variables to s3rver's credentials (per test file: vitest forks). */
export function useS3rverCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = S3RVER_KEY;
  process.env.AWS_SECRET_ACCESS_KEY = S3RVER_KEY;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
}

export async function startS3(buckets: string[] = []): Promise<S3Server> {
  const S3rver = requireCjs('s3rver') as S3rverCtor;
  const directory = await mkdtemp(path.join(os.tmpdir(), 's3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = s3Client(endpoint);
  return {
    endpoint,
    port,
    client,
    async close() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

export function s3Client(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_KEY, secretAccessKey: S3RVER_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function createBucket(client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
}

export async function upload(client: S3Client, bucket: string, key: string, body: Buffer): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }));
}

/**
 * What the proxy does to a GET: pass it, cut the connection mid-body, send half the body and
 * then nothing, never answer at all, or answer 503 SlowDown without asking the server.
 */
export type Fault = 'pass' | 'reset' | 'stall' | 'hang' | '503';

export interface FaultProxy {
  endpoint: string;
  /** Requests seen, in order, as "METHOD /path", plus " range=..." when a Range header was sent. */
  readonly requests: string[];
  /** Object GETs seen (the downloads). */
  gets(): number;
  close(): Promise<void>;
}

/**
 * An HTTP proxy in front of `targetPort`. The n-th object GET gets `faults[n]` (then 'pass').
 * Headers are forwarded unchanged, so SigV4 signatures made for the proxy's host still verify.
 */
export async function startFaultProxy(
  targetPort: number,
  faults: Fault[] = [],
  /** Runs before the n-th object GET (from 0) is forwarded, e.g. to replace the object. */
  beforeGet?: (n: number) => Promise<void>,
): Promise<FaultProxy> {
  const requests: string[] = [];
  let getCount = 0;
  const held = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}${req.headers.range ? ` range=${req.headers.range}` : ''}`);
    const isObjectGet = req.method === 'GET' && /^\/[^/?]+\/[^?]+/.test(req.url ?? '');
    const fault: Fault = isObjectGet ? (faults[getCount] ?? 'pass') : 'pass';
    if (isObjectGet) getCount += 1;
    if (fault === 'hang') {
      if (req.socket) held.add(req.socket);
      return;
    }
    if (fault === '503') {
      res.writeHead(503, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      return;
    }
    void (beforeGet && isObjectGet ? beforeGet(getCount - 1) : Promise.resolve()).then(() => forward(req, res, fault));
  });
  const forward = (req: http.IncomingMessage, res: http.ServerResponse, fault: Fault): void => {
    const upstream = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (fault === 'pass') {
          up.pipe(res);
          return;
        }
        const chunks: Buffer[] = [];
        up.on('data', (c: Buffer) => chunks.push(c));
        up.on('end', () => {
          const body = Buffer.concat(chunks);
          res.write(body.subarray(0, Math.floor(body.length / 2)));
          const socket = res.socket;
          if (!socket) return;
          if (fault === 'reset') {
            // Let the half body leave, then drop the connection with a TCP reset.
            setTimeout(() => socket.resetAndDestroy(), 20);
          } else {
            held.add(socket); // stall: keep the connection open, send nothing more
          }
        });
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    gets: () => getCount,
    async close() {
      for (const s of held) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}
