/**
 * The real Hugging Face files in ../shared/data/real-models (see its README): tokenizers of real models and two
 * real ONNX exports, read at test time (never copied into the repo).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { unzipTo } from './unzip.ts';

export const REAL_MODELS = resolve(import.meta.dirname, '../../../shared/data/real-models');
export const realTokenizer = (name: 'bert-base-uncased' | 'bert-base-cased' | 'roberta-base' | 'all-minilm-l6-v2' | 'bert-base-multilingual-uncased') => join(REAL_MODELS, 'tokenizers', `${name}.json`);
export const DISTILBERT_CLASSIFIER = join(REAL_MODELS, 'exports/optimum-tiny-distilbert-classifier');
export const XLMR_CROSS_ENCODER_ZIP = join(REAL_MODELS, 'exports/opensearch-tiny-xlmr-cross-encoder/TinyXLMRoberta-CE-onnx.zip');

/**
 * ml-commons' tiny XLM-R cross-encoder as a user would serve it: its raw files (model.onnx, tokenizer.json) plus
 * the one thing they cannot tell, in gateway.json: the task and the window (a 64-row position table, pad id 1
 * offset: 62 tokens). Random-weight: a stand-in for routes and scores, not a model of relevance.
 */
export async function crossEncoderFolder(extra: Record<string, unknown> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'xlmr-ce-'));
  await unzipTo(XLMR_CROSS_ENCODER_ZIP, dir);
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify({ task: 'text-ranking', max_length: 62, ...extra }));
  return dir;
}
