import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import { GatewayError } from '../../errors.ts';
import { rerank } from '../../services/ranking.ts';
import { checkBatch, checkText } from '../../services/limits.ts';
import { inferenceErrors, ModelName } from '../schemas.ts';
import { ctxOf } from '../context.ts';

const Document = Type.Union([Type.String({ minLength: 1 }), Type.Object({ text: Type.Optional(Type.String()) }, { additionalProperties: Type.Unknown() })], {
  description: 'A text, or an object whose `text` (or `rank_fields`) is ranked and which is returned as it was given',
});

const Body = Type.Object(
  {
    query: Type.String({ minLength: 1 }),
    documents: Type.Array(Document, { minItems: 1 }),
    model: Type.Optional(ModelName),
    top_n: Type.Optional(Type.Integer({ minimum: 1, description: 'Results to return, best first; all when omitted' })),
    return_documents: Type.Optional(Type.Boolean({ description: 'Include each document in its result (Cohere v1 and Jina do)' })),
    rank_fields: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Fields of object documents to rank on, in this order (Cohere v1); default text' })),
    truncate: Type.Optional(Type.Boolean({ description: 'Cut pairs over the model window, the longer text first, as sentence-transformers does; otherwise such a pair is a 413' })),
    max_chunks_per_doc: Type.Optional(Type.Integer({ minimum: 1, description: 'Accepted for Cohere clients; documents are not chunked (use truncate)' })),
    max_tokens_per_doc: Type.Optional(Type.Integer({ minimum: 1, description: 'Accepted for Cohere v2 clients; documents are not chunked (use truncate)' })),
  },
  {
    examples: [
      {
        query: 'a web server',
        documents: ['nginx serves web pages.', 'vim edits text.', 'curl fetches URLs.'],
        top_n: 2,
        return_documents: true,
      },
    ],
  },
);

const Result = Type.Object({
  index: Type.Integer({ description: 'Position of the document in the request' }),
  relevance_score: Type.Number({ description: "The cross-encoder's score (sigmoid of its logit unless the model says otherwise)" }),
  document: Type.Optional(Type.Unknown({ description: '{ text } for a text, or the object as given' })),
});

const Response = Type.Object({
  id: Type.String({ description: 'The request id' }),
  model: Type.String(),
  model_version: Type.String({ description: 'The version that answered (manifest version + content digest); a replaced model answers in-flight requests with the version they started on' }),
  results: Type.Array(Result, { description: 'Best first' }),
  meta: Type.Object({ api_version: Type.Object({ version: Type.String() }), billed_units: Type.Object({ search_units: Type.Integer() }) }),
});

/** Cohere / Jina rerank (which LangChain, LlamaIndex and Haystack call): documents ranked by a text-ranking model. */
const rerankRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { limits } = app.config;
  const routes = [
    ['/v1/rerank', '1', 'Rerank documents for a query with a text-ranking model (cross-encoder), in the shape of Cohere v1 and Jina rerank; results best first.'],
    ['/v2/rerank', '2', "Cohere v2 rerank (the cohere-ai client's v2.rerank): as /v1/rerank."],
  ] as const;
  for (const [url, version, description] of routes) {
    app.post(url, {
      schema: { tags: ['text-ranking'], description, body: Body, response: { 200: Response, ...inferenceErrors } },
      handler: async (req) => {
        const b = req.body;
        checkText('query', b.query, limits.maxTextChars);
        checkBatch('documents', b.documents.length, limits.maxBatchItems);
        const fields = b.rank_fields ?? ['text'];
        const texts = b.documents.map((d, i) => {
          if (typeof d === 'string') return d;
          const obj = d as Record<string, unknown>;
          const parts = fields.flatMap((f) => (typeof obj[f] === 'string' ? [fields.length === 1 ? (obj[f] as string) : `${f}: ${obj[f] as string}`] : []));
          if (parts.length === 0) throw new GatewayError('invalid_request', `documents[${i}] has no string field ${fields.map((f) => `"${f}"`).join(' or ')} to rank on`);
          return parts.join('\n');
        });
        texts.forEach((t, i) => checkText(`documents[${i}]`, t, limits.maxTextChars));
        const model = await app.models.resolve('text-ranking', b.model, req.lease);
        const ranked = await rerank(model, b.query, texts, ctxOf(req), { topN: b.top_n, truncate: b.truncate });
        const withDocs = b.return_documents ?? false;
        return {
          id: req.id,
          model: model.name, model_version: model.version,
          results: ranked.map((r) => {
            const doc = b.documents[r.index];
            return { index: r.index, relevance_score: r.score, ...(withDocs ? { document: typeof doc === 'string' ? { text: doc } : doc } : {}) };
          }),
          meta: { api_version: { version }, billed_units: { search_units: 1 } },
        };
      },
    });
  }
};

export default rerankRoutes;
