/**
 * Feedback on answers, from the people who read them: checked against the text it refers to (the QA context, or
 * a collection's document), tied to the request that gave the answer and the model version that answered, stored
 * durably, and exported as SQuAD 2.0 for fine-tuning (scripts/train accepts the file). Knows nothing of HTTP.
 */
import { randomUUID } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { GatewayError } from '../errors.ts';
import type { CollectionStore } from '../collections/types.ts';
import { toSquad, type FeedbackRecord, type FeedbackStore } from '../feedback/types.ts';

export interface FeedbackInput {
  request_id?: string;
  question: string;
  context?: string;
  collection?: string;
  document_id?: string;
  answer?: { text: string; start: number };
  correct: boolean;
  correction?: { start: number; end: number };
  model?: string;
  model_version?: string;
}

export class FeedbackService {
  /** Recent QA answers by request id: which model version gave them. */
  private readonly recent: LRUCache<string, { model: string; model_version: string }> | undefined;

  constructor(
    readonly store: FeedbackStore,
    private readonly collections: CollectionStore,
    opts: { recentAnswers: number; maxContextChars: number },
  ) {
    this.recent = opts.recentAnswers > 0 ? new LRUCache({ max: opts.recentAnswers }) : undefined;
    this.maxContextChars = opts.maxContextChars;
  }

  private readonly maxContextChars: number;

  /** Remembers who answered a request (called by the QA routes). */
  answered(requestId: string, model: string, version: string): void {
    this.recent?.set(requestId, { model, model_version: version });
  }

  async add(input: FeedbackInput): Promise<FeedbackRecord> {
    const byDocument = input.collection !== undefined || input.document_id !== undefined;
    if (byDocument === (input.context !== undefined)) throw new GatewayError('invalid_request', 'give either "context", or "collection" and "document_id" of the document the answer was read in');
    let context: string;
    if (byDocument) {
      if (!input.collection || !input.document_id) throw new GatewayError('invalid_request', '"collection" and "document_id" go together');
      const doc = (await this.collections.getCollection(input.collection)) ? await this.collections.getDocument(input.collection, input.document_id) : undefined;
      if (!doc) throw new GatewayError('not_found', `no document "${input.document_id}" in collection "${input.collection}"`);
      context = doc.text;
    } else context = input.context!;
    if (context.length > this.maxContextChars) throw new GatewayError('too_large', `context is ${context.length} characters; the limit is ${this.maxContextChars}`, { details: { limit: this.maxContextChars } });
    if (input.answer) {
      const { text, start } = input.answer;
      if (!Number.isInteger(start) || start < 0 || start + text.length > context.length || context.slice(start, start + text.length) !== text) {
        throw new GatewayError('invalid_request', `answer.text is not the context's text at answer.start ${start}`);
      }
    }
    let correction: FeedbackRecord['correction'];
    if (input.correction) {
      if (input.correct) throw new GatewayError('invalid_request', 'a correction goes with "correct": false');
      const { start, end } = input.correction;
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start || end > context.length) {
        throw new GatewayError('invalid_request', `correction must be a span 0 <= start < end <= ${context.length} of the context`);
      }
      const text = context.slice(start, end);
      if (text.trim() === '') throw new GatewayError('invalid_request', 'correction is only whitespace');
      correction = { start, end, text };
    }
    const who = input.request_id ? this.recent?.get(input.request_id) : undefined;
    const record: FeedbackRecord = {
      id: randomUUID(),
      created_at: new Date().toISOString(),
      ...(input.request_id ? { request_id: input.request_id } : {}),
      ...(who ?? (input.model ? { model: input.model, ...(input.model_version ? { model_version: input.model_version } : {}) } : {})),
      question: input.question,
      context,
      ...(byDocument ? { collection: input.collection, document_id: input.document_id } : {}),
      ...(input.answer ? { answer: input.answer } : {}),
      correct: input.correct,
      ...(correction ? { correction } : {}),
    };
    await this.store.append(record);
    return record;
  }

  async exportSquad() {
    return toSquad(await this.store.all());
  }
}
