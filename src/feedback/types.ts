/**
 * Answer feedback: a QA answer marked right or wrong, with an optional corrected span, kept as the users' data
 * it is (durable before the 201), and exported as SQuAD 2.0 for fine-tuning. Pure types and the export.
 */

export interface FeedbackRecord {
  id: string;
  created_at: string;
  request_id?: string;
  /** The model (and version) that gave the answer, when the request id tells it or the client says it. */
  model?: string;
  model_version?: string;
  question: string;
  /** The text the offsets index: the QA context, or the collection document's text. */
  context: string;
  collection?: string;
  document_id?: string;
  answer?: { text: string; start: number };
  correct: boolean;
  correction?: { start: number; end: number; text: string };
}

/** Where feedback is kept: appended durably (resolves only once it would survive a crash), read back whole. */
export interface FeedbackStore {
  readonly kind: 'journal' | 'postgres';
  open(): Promise<void>;
  close(): Promise<void>;
  append(r: FeedbackRecord): Promise<void>;
  all(): Promise<FeedbackRecord[]>;
}

interface SquadQa {
  id: string;
  question: string;
  answers: { text: string; answer_start: number }[];
  is_impossible: boolean;
}

/**
 * SQuAD 2.0: one paragraph per distinct context; a right answer or a correction is the gold answer; a wrong answer
 * with no correction, or a right "no answer", is an unanswerable question (the context does not answer it).
 */
export function toSquad(records: FeedbackRecord[]): { version: string; data: { title: string; paragraphs: { context: string; qas: SquadQa[] }[] }[] } {
  const byContext = new Map<string, SquadQa[]>();
  for (const r of records) {
    let qa: SquadQa;
    if (r.correct && r.answer && r.answer.text !== '') qa = { id: r.id, question: r.question, answers: [{ text: r.answer.text, answer_start: r.answer.start }], is_impossible: false };
    else if (!r.correct && r.correction) qa = { id: r.id, question: r.question, answers: [{ text: r.correction.text, answer_start: r.correction.start }], is_impossible: false };
    else if (r.correct || !r.answer || r.answer.text !== '') qa = { id: r.id, question: r.question, answers: [], is_impossible: true };
    else continue; // "no answer" marked wrong without a correction: nothing to learn the answer from
    const list = byContext.get(r.context) ?? [];
    list.push(qa);
    byContext.set(r.context, list);
  }
  return { version: 'v2.0', data: [{ title: 'feedback', paragraphs: [...byContext].map(([context, qas]) => ({ context, qas })) }] };
}
