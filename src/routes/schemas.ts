import { Type, type TSchema } from '@fastify/type-provider-typebox';

/** The one error body (../shared/API.md, "Errors"). */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, e.g. invalid_request, model_not_found, overloaded' }),
      message: Type.String({ description: 'What went wrong, naming the field or the limit' }),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { $id: 'ErrorResponse', description: 'Error' },
);

const err = (description: string) => ({ ...Type.Ref('ErrorResponse'), description }) as unknown as TSchema;

/** Error responses every inference route documents. */
export const inferenceErrors = {
  400: err('Malformed JSON, wrong types, missing or empty fields'),
  401: err('API key required and missing or wrong'),
  404: err('Unknown model (the message lists the models for the task)'),
  413: err('Body, batch or text over its limit (the message gives the limit)'),
  415: err('Unsupported content type'),
  422: err('The model cannot take this input (e.g. a model for another task)'),
  429: err('Rate limit reached; see Retry-After'),
  503: err('Not ready, overloaded or draining; see Retry-After'),
  500: err('A bug; logged with the request id'),
};

export const ModelName = Type.String({ minLength: 1, maxLength: 64, description: 'Model name; the task default when omitted' });

/** A non-empty text; `maxLength` is checked in the service against config so the message gives the limit. */
export const Text = (description: string, example?: string) => Type.String({ minLength: 1, description, ...(example ? { examples: [example] } : {}) });
