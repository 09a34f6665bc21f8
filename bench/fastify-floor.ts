/**
 * The framework's floor for bench/request-cost.ts: Fastify 5 with the gateway's validator (TypeBox), one
 * validated JSON POST answered with a fixed body (FLOOR_BODY: the bytes of an embeddings answer), no hooks, no
 * logger. What parsing, validating and answering a request costs before the gateway does anything. FLOOR_HEADERS (a
 * JSON object) adds those response headers to every answer: the floor with the gateway's headers.
 *   node --import tsx bench/fastify-floor.ts <port>
 */
import Fastify from 'fastify';
import { Type, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';

const body = process.env.FLOOR_BODY ?? '{}';
const headers = JSON.parse(process.env.FLOOR_HEADERS ?? '{}') as Record<string, string>;
const app = Fastify({ logger: false });
app.setValidatorCompiler(TypeBoxValidatorCompiler);
const Body = Type.Object({ input: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })]), model: Type.Optional(Type.String()) });
app.post('/v1/embeddings', { schema: { body: Body } }, async (_req, reply) => reply.headers(headers).type('application/json').send(body));
app.get('/ready', async () => ({ ok: true }));
await app.listen({ port: Number(process.argv[2]), host: '127.0.0.1' });
