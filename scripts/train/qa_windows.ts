/**
 * (question, context) pairs -> the exact windows the gateway feeds the model: src/inference/tokenizer.ts
 * encodePairWindows (question whole, context in overlapping windows of maxLength tokens, `stride` tokens shared).
 *
 * usage: node --import tsx scripts/train/qa_windows.ts tokenizer.json in.jsonl out.jsonl maxLength stride
 * in rows:  { id, q, c, ans?: [charStart, charEnd] | null, keep?: "all" | "answer+1" }
 * out rows: one per window: { id, w (window index), ids, tt, s, e, has } where s/e are the answer's token indices when the
 *           whole answer lies inside that window's context tokens, else 0/0 ([CLS], "no answer here"), has = answer inside;
 *           with "offs": true in the input row also offsets, seq and word ids (for evaluation).
 * keep "answer+1" (default for training rows): only the window(s) holding the answer and at most one other window, so a
 * 30,000-character COVID-QA paper does not turn into 40 negative windows per question.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { TextTokenizer, type EncodedWindow } from '../../src/inference/tokenizer.ts';

interface InRow {
  id: string;
  q: string;
  c: string;
  ans?: [number, number] | null;
  keep?: 'all' | 'answer+1';
  offs?: boolean;
}

const [tokPath, inPath, outPath, maxLenArg, strideArg] = process.argv.slice(2);
const tok = await TextTokenizer.fromFile(tokPath, { maxLength: Number(maxLenArg) });
const stride = Number(strideArg);

/** Token indices of [cs, ce) inside this window's context tokens, or null when the answer is not wholly inside. */
function locate(w: EncodedWindow, cs: number, ce: number): [number, number] | null {
  let first = -1;
  let last = -1;
  for (let i = 0; i < w.ids.length; i++) {
    if (w.sequenceIds[i] !== 1) continue;
    if (first < 0) first = i;
    last = i;
  }
  if (first < 0 || w.offsets[first][0] > cs || w.offsets[last][1] < ce) return null;
  let s = -1;
  let e = -1;
  for (let i = first; i <= last; i++) {
    const [os, oe] = w.offsets[i];
    if (s < 0 && oe > cs) s = i;
    if (os < ce) e = i;
  }
  return s >= 0 && e >= s ? [s, e] : null;
}

let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);

const out = fs.createWriteStream(outPath);
const rl = readline.createInterface({ input: fs.createReadStream(inPath) });
let rows = 0;
let windows = 0;
let lost = 0;
let batch: InRow[] = [];

async function flush(): Promise<void> {
  const encoded = await Promise.all(batch.map((r) => tok.encodePairWindows(r.q, r.c, { stride })));
  batch.forEach((r, k) => {
    const ws = encoded[k];
    const spans = ws.map((w) => (r.ans ? locate(w, r.ans[0], r.ans[1]) : null));
    let pick = ws.map((_, i) => i);
    if ((r.keep ?? 'answer+1') === 'answer+1' && ws.length > 1) {
      const pos = pick.filter((i) => spans[i]);
      const neg = pick.filter((i) => !spans[i]);
      pick = [...pos, ...(neg.length ? [neg[Math.floor(rand() * neg.length)]] : [])].sort((a, b) => a - b);
    }
    if (r.ans && !spans.some(Boolean)) lost++;
    for (const i of pick) {
      const w = ws[i];
      const sp = spans[i];
      const o: Record<string, unknown> = { id: r.id, w: i, n: ws.length, ids: w.ids, tt: w.typeIds, s: sp ? sp[0] : 0, e: sp ? sp[1] : 0, has: !!sp };
      if (r.offs) Object.assign(o, { offs: w.offsets, seq: w.sequenceIds, wid: w.wordIds });
      out.write(JSON.stringify(o) + '\n');
      windows++;
    }
  });
  rows += batch.length;
  batch = [];
}

for await (const line of rl) {
  if (!line) continue;
  batch.push(JSON.parse(line) as InRow);
  if (batch.length >= 256) await flush();
}
await flush();
await new Promise<void>((resolve) => out.end(resolve));
console.error(`qa_windows: ${rows} pairs -> ${windows} windows${lost ? `, ${lost} answers in no single window (kept as no-answer windows)` : ''}`);
