/**
 * Cosines of STS Benchmark pairs as the gateway computes them: the gateway's tokenizer, onnxruntime-node with one
 * intra-op thread, the graph's `sentence_embedding` (or its token vectors pooled as gateway.json says), L2-normalised.
 * Writes { gold, cosine, a, b } per pair for the Python side (lexical.py: Spearman, Pearson, the similar/not threshold).
 *
 * usage: node --import tsx scripts/train/eval_sts.ts --zip z [--model other.onnx] --csv sts-dev.csv --out cos.json
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { TextTokenizer } from '../../src/inference/tokenizer.ts';
import type { Pooling } from '../../src/tasks/similarity.ts';
import { embedTexts } from './eval_rank.ts';
import { modelFiles } from './eval_qa.ts';

const { values: a } = parseArgs({ options: { zip: { type: 'string' }, model: { type: 'string' }, csv: { type: 'string' }, out: { type: 'string' } } });
const { dir, gateway } = await modelFiles({ zip: a.zip });
// STS-B's tab-separated rows: genre, file, year, id, score, sentence 1, sentence 2 (some rows carry extra columns).
const rows = fs.readFileSync(a.csv!, 'utf8').split('\n').map((l) => l.split('\t')).filter((c) => c.length >= 7);
const session = await ort.InferenceSession.create(a.model ?? path.join(dir, 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
const tok = await TextTokenizer.fromFile(path.join(dir, 'tokenizer.json'), { maxLength: Number(gateway.max_length ?? 128) });
const pooling = (gateway.pooling ?? 'mean') as Pooling;
const A = await embedTexts(session, tok, rows.map((r) => r[5]), pooling);
const B = await embedTexts(session, tok, rows.map((r) => r[6]), pooling);
const cosine = A.map((x, i) => x.reduce((s, v, d) => s + v * B[i][d], 0));
await session.release();
fs.writeFileSync(a.out!, JSON.stringify({ gold: rows.map((r) => Number(r[4])), cosine, a: rows.map((r) => r[5]), b: rows.map((r) => r[6]) }));
