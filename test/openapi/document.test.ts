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
        // 200, or 201 for what a POST creates (a collection, a feedback record), 202 for admin work that goes on in the background.
        expect(Object.keys(op.responses).filter((c) => /^2\d\d$/.test(c)), `${method} ${path} success`).toHaveLength(1);
        if (method === 'post') for (const code of ['400', '404', '413', '422', '429', '503']) expect(op.responses[code], `${method} ${path} ${code}`).toBeDefined();
      }
    }
  });
});
