import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/** OpenAPI 3 document at /docs/json and Swagger UI at /docs. Registered before the routes so it sees them all. */
async function swaggerPlugin(app: FastifyInstance) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'NLP inference gateway',
        description:
          'Question answering, sentence similarity, reranking, essay scoring and text classification on ONNX Runtime, with Hugging Face, OpenAI, Cohere-style rerank and text-embeddings-inference compatible routes. Errors share one body: `{ "error": { "code", "message", "details"? } }`.',
        version: '0.1.0',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Only when the deployment sets API keys' } } },
      tags: [
        { name: 'question-answering', description: 'Extractive QA with exact character offsets' },
        { name: 'sentence-similarity', description: 'Embeddings, cosine similarity, OpenAI-style embeddings' },
        { name: 'essay-scoring', description: 'Scores on the model rubric' },
        { name: 'text-classification', description: 'Labels with scores, for texts and text pairs' },
        { name: 'text-ranking', description: 'Cross-encoders: relevance of (query, passage) pairs; Cohere/Jina and TEI rerank' },
        { name: 'collections', description: 'Document collections: ingest, search (vector, keyword, hybrid, rerank), question answering over them' },
        { name: 'feedback', description: 'Answers marked right or wrong by their readers, exported as SQuAD 2.0 training data' },
        { name: 'huggingface', description: 'Hugging Face Inference API compatible' },
        { name: 'models', description: 'Models and their boot state' },
        { name: 'kserve-v2', description: 'Open Inference Protocol (KServe v2 / Triton) REST: raw tensors; errors as { "error": "..." }' },
        { name: 'ops', description: 'Health and metrics' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { docExpansion: 'list', deepLinking: true } });
}

export default fp(swaggerPlugin, { name: 'swagger' });
