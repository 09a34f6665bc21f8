/** readManifest: gateway.json merged with config.json; what cannot be known is a clear error. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { BootError } from '../../src/errors.ts';
import { readManifest } from '../../src/store/read-manifest.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'manifest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Files = Record<string, unknown>;

/** Writes a model folder: objects as JSON, strings as they are, null leaves the file out. */
async function model(files: Files): Promise<void> {
  const all: Files = { 'tokenizer.json': '{}', 'model.onnx': 'onnx', ...files };
  for (const [name, content] of Object.entries(all)) {
    if (content === null) continue;
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
}

async function failure(): Promise<BootError> {
  const err = await readManifest(dir, 'm').catch((e: unknown) => e);
  expect(err).toBeInstanceOf(BootError);
  expect(err).toMatchObject({ model: 'm', step: 'loading' });
  return err as BootError;
}

describe('complete gateway.json', () => {
  test('is taken as it is, with absolute paths filled in', async () => {
    await model({
      'gateway.json': {
        name: 'ignored-in-favour-of-config-name', version: '1.2', task: 'essay-scoring', max_length: 256,
        labels: ['low', 'mid', 'high'], output: 'softmax', score: { min: 1, max: 6, round: 0.5, bandScores: [1, 3.5, 6] },
        description: 'essays',
      },
      'config.json': { max_position_embeddings: 512 },
    });
    expect(await readManifest(dir, 'm')).toEqual({
      name: 'm', version: '1.2', task: 'essay-scoring', maxLength: 256, labels: ['low', 'mid', 'high'], output: 'softmax',
      score: { min: 1, max: 6, round: 0.5, bandScores: [1, 3.5, 6] }, description: 'essays', normalize: true, padId: 0,
      onnxPath: 'model.onnx', dir, tokenizerPath: path.join(dir, 'tokenizer.json'),
    });
  });

  test('similarity with pooling and threshold', async () => {
    await model({ 'gateway.json': { task: 'sentence-similarity', max_length: 128, output: 'identity', pooling: 'cls', threshold: 0.7, hybrid_keyword_weight: 0.7, description: '' } });
    expect(await readManifest(dir, 'm')).toMatchObject({ task: 'sentence-similarity', pooling: 'cls', threshold: 0.7, hybridKeywordWeight: 0.7, maxLength: 128, version: '0' });
  });
});

describe('facts read from the Hugging Face files', () => {
  test('labels from id2label, max_length from max_position_embeddings, output softmax for single-label', async () => {
    await model({
      'gateway.json': { task: 'text-classification' },
      'config.json': { max_position_embeddings: 512, id2label: { 1: 'pos', 0: 'neg' } },
    });
    expect(await readManifest(dir, 'm')).toMatchObject({ labels: ['neg', 'pos'], maxLength: 512, output: 'softmax' });
  });

  test('task from architectures when there is no gateway.json; sigmoid for multi-label', async () => {
    await model({ 'config.json': { architectures: ['BertForSequenceClassification'], problem_type: 'multi_label_classification', max_position_embeddings: 64, id2label: { 0: 'a', 1: 'b' } } });
    expect(await readManifest(dir, 'm')).toMatchObject({ task: 'text-classification', output: 'sigmoid', labels: ['a', 'b'] });
  });

  test('QA takes identity output and ignores the default LABEL_0/LABEL_1', async () => {
    await model({ 'config.json': { architectures: ['BertForQuestionAnswering'], max_position_embeddings: 384, id2label: { 0: 'LABEL_0', 1: 'LABEL_1' } } });
    const m = await readManifest(dir, 'm');
    expect(m).toMatchObject({ task: 'question-answering', output: 'identity', maxLength: 384 });
    expect(m.labels).toBeUndefined();
  });

  test('RoBERTa position tables lose padding_idx + 1 rows; tokenizer_config may lower it further', async () => {
    await model({ 'gateway.json': { task: 'question-answering' }, 'config.json': { model_type: 'roberta', max_position_embeddings: 514, pad_token_id: 1 } });
    expect((await readManifest(dir, 'm')).maxLength).toBe(512);
    await model({ 'tokenizer_config.json': { model_max_length: 256 } });
    expect((await readManifest(dir, 'm')).maxLength).toBe(256);
    await model({ 'tokenizer_config.json': { model_max_length: 1e30 } }); // transformers' "unlimited"
    expect((await readManifest(dir, 'm')).maxLength).toBe(512);
  });

  test('pooling from sentence-transformers 1_Pooling/config.json', async () => {
    await model({ 'gateway.json': { task: 'sentence-similarity', max_length: 128 }, '1_Pooling/config.json': { pooling_mode_mean_tokens: true } });
    expect((await readManifest(dir, 'm')).pooling).toBe('mean');
  });

  test('ONNX file: gateway.json "onnx", else the first of model.onnx, onnx/model.onnx, onnx/model_quantized.onnx', async () => {
    await model({ 'gateway.json': { task: 'question-answering', max_length: 64 }, 'model.onnx': null, 'onnx/model_quantized.onnx': 'q', 'onnx/model.onnx': 'f' });
    expect((await readManifest(dir, 'm')).onnxPath).toBe('onnx/model.onnx');
    await model({ 'gateway.json': { task: 'question-answering', max_length: 64, onnx: 'onnx/model_quantized.onnx' } });
    expect((await readManifest(dir, 'm')).onnxPath).toBe('onnx/model_quantized.onnx');
  });
});

describe('what cannot be known is an error naming the model, the file and the field', () => {
  const cases: Array<[string, Files, RegExp]> = [
    ['no task anywhere', { 'config.json': { max_position_embeddings: 8 } }, /no task: set gateway\.json "task"/],
    ['unknown task', { 'gateway.json': { task: 'translation', max_length: 8 } }, /gateway\.json "task" is "translation"; expected one of question-answering/],
    ['no max_length', { 'gateway.json': { task: 'question-answering' } }, /no max_length: set gateway\.json "max_length"/],
    ['max_length past the position table', { 'gateway.json': { task: 'question-answering', max_length: 1024 }, 'config.json': { max_position_embeddings: 512 } }, /"max_length" is 1024, more than the 512 positions/],
    ['max_length not an integer', { 'gateway.json': { task: 'question-answering', max_length: '128' } }, /"max_length" must be a positive integer/],
    ['classifier without labels', { 'gateway.json': { task: 'text-classification', max_length: 8 } }, /no labels: set gateway\.json "labels" or config\.json "id2label"/],
    ['id2label with a gap', { 'gateway.json': { task: 'text-classification', max_length: 8 }, 'config.json': { id2label: { 0: 'a', 2: 'c' } } }, /config\.json "id2label" must map 0\.\.1/],
    ['duplicate labels', { 'gateway.json': { task: 'text-classification', max_length: 8, labels: ['a', 'a'] } }, /labels must be distinct/],
    ['bad output', { 'gateway.json': { task: 'question-answering', max_length: 8, output: 'relu' } }, /"output" is "relu"/],
    ['essay without a score scale', { 'gateway.json': { task: 'essay-scoring', max_length: 8, output: 'identity' } }, /no score scale: set gateway\.json "score"/],
    ['essay with min >= max', { 'gateway.json': { task: 'essay-scoring', max_length: 8, output: 'identity', score: { min: 5, max: 1 } } }, /"score" needs numbers min < max/],
    ['bandScores not matching labels', { 'gateway.json': { task: 'essay-scoring', max_length: 8, labels: ['a', 'b'], score: { min: 0, max: 1, bandScores: [0] } } }, /bandScores has 1 values but the model has 2 labels/],
    ['threshold out of range', { 'gateway.json': { task: 'sentence-similarity', max_length: 8, threshold: 2 } }, /"threshold" must be a number in \[-1, 1\]/],
    ['hybrid_keyword_weight out of range', { 'gateway.json': { task: 'sentence-similarity', max_length: 8, hybrid_keyword_weight: 1.5 } }, /"hybrid_keyword_weight" must be a number in \[0, 1\], got 1\.5/],
    ['hybrid_keyword_weight on a QA model', { 'gateway.json': { task: 'question-answering', max_length: 8, hybrid_keyword_weight: 0.7 } }, /"hybrid_keyword_weight" is for sentence-similarity models .*; this one is question-answering/],
    ['onnx path escaping the folder', { 'gateway.json': { task: 'question-answering', max_length: 8, onnx: '../other/model.onnx' } }, /"onnx" must stay inside the model folder/],
    ['named onnx missing', { 'gateway.json': { task: 'question-answering', max_length: 8, onnx: 'x.onnx' } }, /"onnx" names x\.onnx, which is not in/],
    ['no onnx at all', { 'gateway.json': { task: 'question-answering', max_length: 8 }, 'model.onnx': null }, /no ONNX graph in .*: looked for model\.onnx, onnx\/model\.onnx, onnx\/model_quantized\.onnx/],
    ['no tokenizer', { 'gateway.json': { task: 'question-answering', max_length: 8 }, 'tokenizer.json': null }, /tokenizer\.json is missing/],
    ['gateway.json not JSON', { 'gateway.json': '{ task: qa' }, /gateway\.json is not valid JSON/],
    ['gateway.json an array', { 'gateway.json': [] }, /gateway\.json must hold a JSON object/],
  ];
  test.each(cases)('%s', async (_label, files, message) => {
    await model(files);
    const err = await failure();
    expect(err.message).toMatch(/^model "m" failed at loading: /);
    expect(err.message).toMatch(message);
  });
});
