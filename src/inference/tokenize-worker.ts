/**
 * A tokenization worker: long inputs are tokenized and cut into windows here, off the event loop. The
 * native encode is asynchronous, but reading a long encoding back into JS and building windows is not
 * (~30 ms for a 3,000-word context), and that would stall every other request.
 */
import { GatewayError } from '../errors.ts';
import { TextTokenizer, type EncodedWindow, type TokenIds } from './tokenizer.ts';

export type TokenizeTask =
  | { op: 'ids'; path: string; maxLength: number; text: string }
  | { op: 'truncated'; path: string; maxLength: number; text: string }
  | { op: 'windows'; path: string; maxLength: number; text: string; stride: number }
  | { op: 'pairWindows'; path: string; maxLength: number; question: string; context: string; stride: number }
  | { op: 'pairIds'; path: string; maxLength: number; first: string; second: string; truncate: boolean; names: [string, string] }
  | { op: 'offsets'; path: string; maxLength: number; text: string };

export type TokenizeResult = { ok: EncodedWindow | EncodedWindow[] | TokenIds | Int32Array } | { error: { code: GatewayError['code']; message: string; details?: unknown } };

const tokenizers = new Map<string, Promise<TextTokenizer>>();

function tokenizerFor(path: string, maxLength: number): Promise<TextTokenizer> {
  const key = `${maxLength}:${path}`;
  let t = tokenizers.get(key);
  if (!t) {
    t = TextTokenizer.fromFile(path, { maxLength });
    tokenizers.set(key, t);
  }
  return t;
}

export default async function tokenize(task: TokenizeTask): Promise<TokenizeResult> {
  try {
    const tok = await tokenizerFor(task.path, task.maxLength);
    switch (task.op) {
      case 'ids':
        return { ok: await tok.encodeIds(task.text) };
      case 'truncated':
        return { ok: await tok.encodeTruncated(task.text) };
      case 'windows':
        return { ok: await tok.encodeWindows(task.text, { stride: task.stride }) };
      case 'pairWindows':
        return { ok: await tok.encodePairWindows(task.question, task.context, { stride: task.stride }) };
      case 'offsets':
        return { ok: await tok.tokenOffsets(task.text) };
      case 'pairIds':
        return { ok: await tok.encodePairIds(task.first, task.second, { truncate: task.truncate, names: task.names }) };
    }
  } catch (err) {
    // Errors cross the thread boundary as plain data; GatewayErrors keep their code.
    if (err instanceof GatewayError) return { error: { code: err.code, message: err.message, details: err.details } };
    throw err;
  }
}
