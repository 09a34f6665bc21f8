import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import SwaggerParser from '@apidevtools/swagger-parser';
import { buildApp, testConfig } from '../helpers/app.ts';

describe('the OpenAPI document', () => {
  let app: FastifyInstance;
  let doc: Record<string, unknown> & { paths: Record<string, Record<string, { tags?: string[]; description?: string; responses: Record<string, unknown>; requestBody?: unknown }>> };
  beforeAll(async () => {
    app = await buildApp(testConfig({ models: [] }), { boot: false });
    doc = (await app.inject('/docs/json')).json();
  });
  afterAll(async () => app?.close());

  it('validates as OpenAPI 3', async () => {
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeDefined();
  });

  it('gives every operation tags, a description and its responses; inference routes document their errors', () => {
    for (const [path, methods] of Object.entries(doc.paths)) {
      if (path.startsWith('/docs') || path === '/' || path.includes('*')) continue;
      for (const [method, op] of Object.entries(methods)) {
        expect(op.tags?.length, `${method} ${path} tags`).toBeGreaterThan(0);
        expect(op.description, `${method} ${path} description`).toBeTruthy();
        // Admin routes answer 202 Accepted (the work goes on in the background), a created collection 201; everything else 200.
        const success = path.startsWith('/v1/models/') && (method === 'put' || method === 'delete') ? '202' : path === '/v1/collections' && method === 'post' ? '201' : '200';
        expect(op.responses[success], `${method} ${path} ${success}`).toBeDefined();
        if (method === 'post') for (const code of ['400', '404', '413', '422', '429', '503']) expect(op.responses[code], `${method} ${path} ${code}`).toBeDefined();
      }
    }
  });
});
