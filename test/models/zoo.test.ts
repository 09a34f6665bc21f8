/**
 * The shipped demo model zoo (models/*.zip, built by scripts/train/build-all.sh): every zip has the artifact layout
 * of ../shared/API.md "Model artifacts", a gateway.json that passes the schema, an ONNX graph whose input and output
 * names fit its task, a tokenizer the Rust bindings load, batch invariance (on text pairs too, where the QA and
 * ranking graphs compute their lexical-match features), and sane answers on one real input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import yauzl from 'yauzl';
import * as ort from 'onnxruntime-node';
import { Tokenizer, type Encoding } from '@anush008/tokenizers';
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';

const MODELS_DIR = path.resolve(import.meta.dirname, '../../models');
const ZIP_LIMIT = 15 * 1024 * 1024;
const REQUIRED_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'model.onnx', 'gateway.json', 'MODEL_CARD.md'];
const SPECIAL_IDS = { '[PAD]': 0, '[UNK]': 1, '[CLS]': 2, '[SEP]': 3, '[MASK]': 4 };

const Task = Type.Union([
  Type.Literal('question-answering'),
  Type.Literal('sentence-similarity'),
  Type.Literal('essay-scoring'),
  Type.Literal('text-classification'),
  Type.Literal('text-ranking'),
]);
const GatewayJson = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    version: Type.String({ pattern: '^\\d+\\.\\d+\\.\\d+$' }),
    task: Task,
    max_length: Type.Integer({ minimum: 8 }),
    labels: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    output: Type.Union([Type.Literal('softmax'), Type.Literal('sigmoid'), Type.Literal('identity')]),
    pooling: Type.Optional(Type.Union([Type.Literal('mean'), Type.Literal('cls')])),
    score: Type.Optional(
      Type.Object(
        { min: Type.Number(), max: Type.Number(), round: Type.Number({ exclusiveMinimum: 0 }), bandScores: Type.Optional(Type.Array(Type.Number())) },
        { additionalProperties: false },
      ),
    ),
    threshold: Type.Optional(Type.Number({ minimum: -1, maximum: 1 })),
    no_answer_threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    hybrid_keyword_weight: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    description: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);
type GatewayJson = Static<typeof GatewayJson>;

/** Output names the gateway looks for, per task. */
/**
 * The 3.x lexical channel (scripts/train/lexical.py): sentence_embedding is the encoder's numbers, then `buckets`
 * hashed lexical ones; the dense half weighs sqrt(a) (retrieve-demo: a chosen on QED/NQ dev; sts-demo: on STS-B dev).
 */
const lexical = (zip: string): { buckets: number; a: number } => (zip.startsWith('sts-demo') ? { buckets: 128, a: 0.8 } : { buckets: 896, a: 0.3 });

const OUTPUTS: Record<GatewayJson['task'], string[][]> = {
  'question-answering': [['start_logits', 'end_logits']],
  'sentence-similarity': [['last_hidden_state'], ['sentence_embedding']],
  'essay-scoring': [['logits']],
  'text-classification': [['logits']],
  'text-ranking': [['logits']],
};

interface Loaded {
  dir: string;
  entries: string[];
  gateway: GatewayJson;
  config: Record<string, unknown> & { max_position_embeddings: number; vocab_size: number; hidden_size: number; id2label?: Record<string, string> };
  session: ort.InferenceSession;
  tokenizer: Tokenizer;
}

function unzip(zipPath: string, dest: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const names: string[] = [];
      zip.on('error', reject);
      zip.on('end', () => resolve(names));
      zip.on('entry', (entry: yauzl.Entry) => {
        const target = path.join(dest, entry.fileName);
        if (path.isAbsolute(entry.fileName) || !target.startsWith(dest + path.sep)) return reject(new Error(`unsafe entry ${entry.fileName}`));
        names.push(entry.fileName);
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        fs.mkdirSync(path.dirname(target), { recursive: true });
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          stream.pipe(fs.createWriteStream(target)).on('finish', () => zip.readEntry()).on('error', reject);
        });
      });
      zip.readEntry();
    });
  });
}

function feeds(encodings: Encoding[]): Record<string, ort.Tensor> {
  const t = Math.max(...encodings.map((e) => e.getLength()));
  const ids = new BigInt64Array(encodings.length * t);
  const att = new BigInt64Array(encodings.length * t);
  const typ = new BigInt64Array(encodings.length * t);
  encodings.forEach((e, i) => {
    const id = e.getIds();
    const tt = e.getTypeIds();
    id.forEach((v, j) => {
      ids[i * t + j] = BigInt(v);
      att[i * t + j] = 1n;
      typ[i * t + j] = BigInt(tt[j]);
    });
  });
  const dims = [encodings.length, t];
  return { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', att, dims), token_type_ids: new ort.Tensor('int64', typ, dims) };
}

/** Row i of a [batch, ...] output, keeping only the first n positions for per-token outputs. */
function row(t: ort.Tensor, i: number, n?: number): number[] {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const flat = Array.from(t.data as Float32Array).slice(i * per, (i + 1) * per);
  if (n === undefined || t.dims.length < 2) return flat;
  return flat.slice(0, n * (t.dims.length === 3 ? t.dims[2] : 1));
}

const softmax = (x: number[]): number[] => {
  const m = Math.max(...x);
  const e = x.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** Row i's unit-length sentence vector: the graph's own `sentence_embedding`, else its token vectors mean-pooled. */
function embedding(t: ort.Tensor, i: number, n: number): number[] {
  if (t.dims.length === 2) {
    const v = row(t, i);
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  }
  return meanPool(t, i, n);
}

function meanPool(t: ort.Tensor, i: number, n: number): number[] {
  const h = t.dims[2];
  const v = row(t, i, n);
  const out = new Array<number>(h).fill(0);
  for (let j = 0; j < n; j++) for (let k = 0; k < h; k++) out[k] += v[j * h + k] / n;
  const norm = Math.hypot(...out);
  return out.map((x) => x / norm);
}
const dot = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i], 0);

const zips = fs.existsSync(MODELS_DIR) ? fs.readdirSync(MODELS_DIR).filter((f) => f.endsWith('.zip')).sort() : [];
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'zoo-test-'));
const loaded = new Map<string, Loaded>();

async function load(zip: string): Promise<Loaded> {
  const cached = loaded.get(zip);
  if (cached) return cached;
  const dir = path.join(tmpRoot, zip.replace(/\.zip$/, ''));
  await fsp.mkdir(dir, { recursive: true });
  const entries = await unzip(path.join(MODELS_DIR, zip), dir);
  const gateway = JSON.parse(await fsp.readFile(path.join(dir, 'gateway.json'), 'utf8')) as GatewayJson;
  const config = JSON.parse(await fsp.readFile(path.join(dir, 'config.json'), 'utf8')) as Loaded['config'];
  const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const tokenizer = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  const l = { dir, entries, gateway, config, session, tokenizer };
  loaded.set(zip, l);
  return l;
}

afterAll(async () => {
  for (const l of loaded.values()) await l.session.release();
  await fsp.rm(tmpRoot, { recursive: true, force: true });
});

describe('demo model zoo', () => {
  it('ships the demo models and the int8 variants of qa, rerank and retrieve', () => {
    expect(zips).toEqual([
      'classify-demo.zip',
      'essay-demo-bands.zip',
      'essay-demo.zip',
      'qa-demo-int8.zip',
      'qa-demo.zip',
      'rerank-demo-int8.zip',
      'rerank-demo.zip',
      'retrieve-demo-int8.zip',
      'retrieve-demo.zip',
      'sts-demo.zip',
    ]);
  });

  it('shares one tokenizer across every model (the same tokenizer.json, byte for byte)', async () => {
    const files = new Set<string>();
    for (const zip of zips) files.add(await fsp.readFile(path.join((await load(zip)).dir, 'tokenizer.json'), 'utf8'));
    expect(files.size).toBe(1);
  });

  describe.each(zips)('%s', (zip) => {
    let m: Loaded;
    beforeAll(async () => {
      m = await load(zip);
    });

    it('is at most 15 MB and has the artifact layout', () => {
      expect(fs.statSync(path.join(MODELS_DIR, zip)).size).toBeLessThanOrEqual(ZIP_LIMIT);
      for (const f of REQUIRED_FILES) expect(m.entries).toContain(f);
    });

    it('has a gateway.json that passes the schema and agrees with config.json', () => {
      const errors = [...Value.Errors(GatewayJson, m.gateway)].map((e) => `${e.instancePath} ${e.message}`);
      expect(errors).toEqual([]);
      expect(m.gateway.name).toBe(zip.replace(/\.zip$/, ''));
      expect(m.gateway.max_length).toBeLessThanOrEqual(m.config.max_position_embeddings);
      if (m.gateway.labels) {
        expect(m.config.id2label).toBeDefined();
        expect(m.gateway.labels).toEqual(Object.keys(m.config.id2label ?? {}).sort((a, b) => Number(a) - Number(b)).map((k) => m.config.id2label?.[k]));
      }
      // A graph that pools itself (retrieve-demo 3: sentence_embedding) declares no pooling; the others mean-pool.
      if (m.gateway.task === 'sentence-similarity') expect(m.gateway.pooling).toBe(m.session.outputNames.includes('sentence_embedding') ? undefined : 'mean');
      if (zip === 'sts-demo.zip') expect(typeof m.gateway.threshold).toBe('number');
      if (m.gateway.task === 'question-answering') expect(typeof m.gateway.no_answer_threshold).toBe('number');
      // The retrievers carry the keyword weight calibrated for collections' hybrid search (calibrate_hybrid.py), and say so in the card.
      if (zip.startsWith('retrieve-demo')) {
        expect(m.gateway.hybrid_keyword_weight).toBe(0.75);
        expect(fs.readFileSync(path.join(m.dir, 'MODEL_CARD.md'), 'utf8')).toMatch(/`hybrid_keyword_weight` is \*\*0\.75\*\*/);
      } else expect(m.gateway.hybrid_keyword_weight).toBeUndefined();
      if (m.gateway.task === 'text-ranking') expect(m.gateway.output).toBe('sigmoid');
      if (zip.endsWith('-int8.zip')) expect(m.gateway.description).toMatch(/int8/);
      if (m.gateway.task === 'essay-scoring') expect(m.gateway.score).toMatchObject({ min: 1, max: 6 });
      expect(fs.readFileSync(path.join(m.dir, 'MODEL_CARD.md'), 'utf8')).toMatch(/baseline/i);
    });

    it('has the shared cased WordPiece tokenizer with the BERT template', async () => {
      for (const [tok, id] of Object.entries(SPECIAL_IDS)) expect(m.tokenizer.tokenToId(tok)).toBe(id);
      expect(m.tokenizer.getVocabSize(true)).toBe(m.config.vocab_size);
      expect(m.config.vocab_size).toBe(16384);
      const enc = await m.tokenizer.encode('Free Software, for everyone!', 'Open source');
      expect(enc.getTokens()).toEqual(['[CLS]', 'Free', 'Software', ',', 'for', 'everyone', '!', '[SEP]', 'Open', 'source', '[SEP]']);
      expect(enc.getTypeIds()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    });

    it('has the ONNX inputs and outputs of its task', () => {
      expect([...m.session.inputNames].sort()).toEqual(['attention_mask', 'input_ids', 'token_type_ids']);
      expect(OUTPUTS[m.gateway.task]).toContainEqual([...m.session.outputNames]);
    });

    it('gives a row the same outputs alone and inside a padded batch, for single texts and for pairs', async () => {
      const cases: [Encoding, Encoding][] = [
        [await m.tokenizer.encode('Short input.'), await m.tokenizer.encode('A noticeably longer input sentence, so that the short one gets padded inside the batch.')],
        [
          await m.tokenizer.encode('Who built it?', 'The bridge was built by Roman engineers.'),
          await m.tokenizer.encode('When was the old stone bridge over the river finished?', 'The old stone bridge over the river was finished in 1345, after the flood of 1333 had destroyed the wooden one.'),
        ],
      ];
      for (const [short, long] of cases) {
        const alone = await m.session.run(feeds([short]));
        const batch = await m.session.run(feeds([long, short]));
        for (const name of m.session.outputNames) {
          const n = name === 'sentence_embedding' ? undefined : short.getLength(); // one vector a row, not one a token
          const a = row(alone[name], 0, n);
          const b = row(batch[name], 1, n);
          expect(b.length).toBe(a.length);
          expect(Math.max(...a.map((v, i) => Math.abs(v - b[i])))).toBeLessThan(1e-4);
        }
      }
    });

    it('answers one real input sensibly', async () => {
      const task = m.gateway.task;
      if (task === 'question-answering') {
        // A paragraph written for this test. Scored as the gateway does (softmax over [CLS] + context tokens,
        // p_start * p_end, spans of at most 30 tokens), with the no-answer rule of gateway.json's threshold.
        const run = async (question: string, context: string): Promise<{ span: string; naProb: number }> => {
          const enc = await m.tokenizer.encode(question, context);
          const out = await m.session.run(feeds([enc]));
          expect(out.start_logits.dims).toEqual([1, enc.getLength()]);
          expect(out.end_logits.dims).toEqual([1, enc.getLength()]);
          const seq = enc.getSequenceIds();
          const idx = [0, ...seq.flatMap((s, i) => (s === 1 ? [i] : []))];
          const ps = softmax(idx.map((i) => row(out.start_logits, 0)[i]));
          const pe = softmax(idx.map((i) => row(out.end_logits, 0)[i]));
          let best = 0;
          let span: [number, number] = [1, 1];
          for (let a = 1; a < idx.length; a++) for (let b = a; b < Math.min(idx.length, a + 30); b++) if (ps[a] * pe[b] > best) [best, span] = [ps[a] * pe[b], [a, b]];
          const offs = enc.getOffsets();
          const nul = ps[0] * pe[0];
          return { span: context.slice(offs[idx[span[0]]][0], offs[idx[span[1]]][1]), naProb: nul / (nul + best) };
        };
        const context =
          'The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris. It was designed and built by the company ' +
          'of the engineer Gustave Eiffel and was completed in 1889 as the entrance arch to the World\'s Fair. It is 330 metres tall.';
        const when = await run('When was the Eiffel Tower completed?', context);
        expect(when.span).toContain('1889');
        expect(when.naProb).toBeLessThanOrEqual(m.gateway.no_answer_threshold ?? 0.5);
        const who = await run('Who designed the tower?', context);
        expect(who.span).toContain('Eiffel');
        const unrelated = await run('How many moons does the planet Jupiter have?', context);
        expect(unrelated.naProb).toBeGreaterThan(m.gateway.no_answer_threshold ?? 0.5);
      } else if (task === 'text-ranking' && zip.startsWith('sts-cross-demo')) {
        // An STS cross-encoder: a paraphrase scores above an unrelated sentence, and above the model's threshold.
        const pairs: [string, string][] = [
          ['A man is playing a guitar.', 'A man plays the guitar on stage.'],
          ['A man is playing a guitar.', 'A woman is slicing an onion in the kitchen.'],
        ];
        const out = await m.session.run(feeds(await Promise.all(pairs.map(([a, b]) => m.tokenizer.encode(a, b)))));
        expect(out.logits.dims).toEqual([2, 1]);
        const [close, far] = [0, 1].map((i) => 1 / (1 + Math.exp(-row(out.logits, i)[0])));
        expect(close).toBeGreaterThan(far + 0.3);
        expect(close).toBeGreaterThanOrEqual(m.gateway.threshold ?? 0);
        expect(far).toBeLessThan(m.gateway.threshold ?? 1);
      } else if (task === 'text-ranking') {
        const query = 'When was the Eiffel Tower completed?';
        const passages = [
          'Photosynthesis converts light energy into chemical energy stored in sugars; it takes place in the chloroplasts of plant cells.',
          'The Eiffel Tower in Paris was designed by the company of Gustave Eiffel and completed in 1889 for the World\'s Fair.',
          'The Tower of London is a historic castle on the north bank of the River Thames, founded in 1066.',
        ];
        const encs = await Promise.all(passages.map((p) => m.tokenizer.encode(query, p)));
        const out = await m.session.run(feeds(encs));
        expect(out.logits.dims).toEqual([3, 1]);
        const [plant, eiffel, london] = [0, 1, 2].map((i) => row(out.logits, i)[0]);
        expect(eiffel).toBeGreaterThan(london);
        expect(london).toBeGreaterThan(plant);
      } else if (task === 'sentence-similarity') {
        const sents = ['A man is playing a guitar.', 'A man plays the guitar on stage.', 'A woman is slicing an onion in the kitchen.'];
        const encs = await Promise.all(sents.map((s) => m.tokenizer.encode(s)));
        const out = await m.session.run(feeds(encs));
        const h = out[m.session.outputNames[0]];
        if (m.session.outputNames[0] === 'sentence_embedding') expect(h.dims).toEqual([3, m.config.hidden_size + lexical(zip).buckets]);
        else expect(h.dims).toEqual([3, Math.max(...encs.map((e) => e.getLength())), m.config.hidden_size]);
        const [a, b, c] = encs.map((e, i) => embedding(h, i, e.getLength()));
        expect(dot(a, b)).toBeGreaterThan(dot(a, c));
        if (m.gateway.threshold !== undefined) expect(dot(a, b)).toBeGreaterThanOrEqual(m.gateway.threshold);
        if (zip.startsWith('retrieve-demo')) {
          // a question lands nearer its own passage than a passage on another topic
          const texts = [
            'When was the Eiffel Tower completed?',
            'The Eiffel Tower in Paris was designed by the company of Gustave Eiffel and completed in 1889 for the World\'s Fair.',
            'Photosynthesis converts light energy into chemical energy stored in sugars; it takes place in the chloroplasts of plant cells.',
          ];
          const te = await Promise.all(texts.map((s) => m.tokenizer.encode(s)));
          const o = (await m.session.run(feeds(te)))[m.session.outputNames[0]];
          const [q, p1, p2] = te.map((e, i) => embedding(o, i, e.getLength()));
          expect(dot(q, p1)).toBeGreaterThan(dot(q, p2));
        }
        if (m.session.outputNames.includes('sentence_embedding')) {
          // The lexical channel: two unit halves weighted sqrt(a) and sqrt(1 - a), and a lexical half that folds case
          // and accents, stems, and drops stopwords and punctuation.
          const { a } = lexical(zip);
          const raw = (await m.session.run(feeds(encs))).sentence_embedding;
          expect(Math.hypot(...row(raw, 0).slice(0, m.config.hidden_size))).toBeCloseTo(Math.sqrt(a), 5);
          expect(Math.hypot(...row(raw, 0).slice(m.config.hidden_size))).toBeCloseTo(Math.sqrt(1 - a), 5);
          const variants = await Promise.all(['The River of Europe', 'Europe, and its rivers.', 'France: capital'].map((s) => m.tokenizer.encode(s)));
          const lex = (await m.session.run(feeds(variants))).sentence_embedding;
          const [r1, r2, r3] = [0, 1, 2].map((i) => row(lex, i).slice(m.config.hidden_size));
          expect(Math.max(...r1.map((v, k) => Math.abs(v - r2[k])))).toBeLessThan(1e-6);
          expect(Math.max(...r1.map((v, k) => Math.abs(v - r3[k])))).toBeGreaterThan(0.1);
        }
      } else if (task === 'essay-scoring') {
        const intact =
          'This package provides a small command-line tool to convert images between formats. It reads PNG, JPEG and GIF files and writes any of them. ' +
          'Options control the output quality and size. The tool is designed to be used in shell scripts and batch jobs.';
        const broken =
          'Images this between formats tool convert. Chess engine with a strong opening book. It reads PNG, and JPEG writes of them. ' +
          'The bakery sells fresh bread every morning. Size output the quality and control options.';
        const encs = [await m.tokenizer.encode(intact), await m.tokenizer.encode(broken)];
        const out = await m.session.run(feeds(encs));
        const logits = out.logits;
        const bands = m.gateway.labels?.length ?? 1;
        expect(logits.dims).toEqual([2, bands]);
        const score = (i: number): number => {
          const r = row(logits, i);
          if (m.gateway.output === 'identity') return r[0];
          const bs = m.gateway.score?.bandScores ?? [];
          return softmax(r).reduce((s, p, k) => s + p * bs[k], 0);
        };
        expect(score(0)).toBeGreaterThan(score(1) + 0.5);
        expect(score(0)).toBeGreaterThan(3.5);
      } else {
        const text = 'Fast-paced arcade shooter: fly a spaceship through levels of enemy waves, collect power-ups and beat the high score.';
        const enc = await m.tokenizer.encode(text);
        const out = await m.session.run(feeds([enc]));
        expect(out.logits.dims).toEqual([1, m.gateway.labels?.length]);
        const p = softmax(row(out.logits, 0));
        const label = m.gateway.labels?.[p.indexOf(Math.max(...p))];
        expect(label).toBe('games');
      }
    });
  });
});
