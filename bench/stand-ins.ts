/**
 * The bench's realistic shapes, SPEED-ONLY: random-weight encoders with the shapes of all-MiniLM-L6-v2 and
 * DistilBERT-base SQuAD (test/fixtures/stand-in-onnx.ts, Optimum's input and output names), paired with the real
 * tokenizers of ../shared/data/real-models and the config files those exports carry, laid out as a Hugging Face
 * export (graph at onnx/model.onnx, which both the gateway and transformers.js read) and packed as gateway zips by
 * publish-model. They cost what the real models cost per token and know nothing: never shipped, never served
 * outside the bench, and every row and document that shows them says "speed-only".
 *
 * Built at bench time into a folder under the OS temp dir, reused by later runs while its inputs are unchanged
 * (the folder name carries a hash of them). Also the int8 variant of the MiniLM shape, quantized here as
 * scripts/train/quantize.py quantizes the demo models: static activation scales calibrated once on real sentences
 * (so batch invariance holds), int8 weights per output column in MatMulIntegerToFloat, an int8 word table with a
 * scale per row.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import onnxProto, { type onnx as OnnxTypes } from 'onnx-proto';
import { buildStandIn, type StandInOptions } from '../test/fixtures/stand-in-onnx.ts';
import { realTokenizer } from '../test/helpers/real-models.ts';
import { packFolder } from '../scripts/publish-model.ts';
import { TextTokenizer } from '../src/inference/tokenizer.ts';

const { onnx } = onnxProto;

export const SPEED_ONLY = 'speed-only (random weights)';

export interface StandIn {
  /** Model name in the gateway and the naive server. */
  name: string;
  like: string;
  task: 'sentence-similarity' | 'question-answering';
  /** The export folder (graph at onnx/model.onnx). */
  dir: string;
  onnx: string;
  tokenizer: string;
  zip: string;
  maxLength: number;
  params: number;
}

const MINILM: StandInOptions = { vocabSize: 30522, hidden: 384, layers: 6, heads: 12, intermediate: 1536, maxPositions: 512, typeVocabSize: 2, head: { kind: 'encoder' }, seed: 61 };
const DISTILBERT: StandInOptions = { vocabSize: 30522, hidden: 768, layers: 6, heads: 12, intermediate: 3072, maxPositions: 512, typeVocabSize: 0, head: { kind: 'qa' }, seed: 62 };
/** HF's question-answering pipeline reads 384-token windows (max_seq_len); the tokenizer config says so to both servers. */
const QA_WINDOW = 384;

const json = (dir: string, file: string, value: unknown) => {
  mkdirSync(join(dir, file, '..'), { recursive: true });
  writeFileSync(join(dir, file), JSON.stringify(value, null, 2));
};

const paramsOf = (o: StandInOptions) => o.vocabSize * o.hidden + o.maxPositions * o.hidden + o.layers * (4 * o.hidden * o.hidden + 2 * o.hidden * o.intermediate);

function writeMiniLm(dir: string, graph: Uint8Array): void {
  copyFileSync(realTokenizer('all-minilm-l6-v2'), join(dir, 'tokenizer.json'));
  json(dir, 'tokenizer_config.json', { tokenizer_class: 'BertTokenizer', model_max_length: 512, do_lower_case: true });
  json(dir, 'config.json', { model_type: 'bert', architectures: ['BertModel'], vocab_size: MINILM.vocabSize, hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 12, intermediate_size: 1536, max_position_embeddings: 512, type_vocab_size: 2, pad_token_id: 0 });
  json(dir, 'modules.json', [
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    { idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' },
  ]);
  json(dir, '1_Pooling/config.json', { word_embedding_dimension: 384, pooling_mode_cls_token: false, pooling_mode_mean_tokens: true, pooling_mode_max_tokens: false, pooling_mode_mean_sqrt_len_tokens: false });
  json(dir, 'sentence_bert_config.json', { max_seq_length: 256, do_lower_case: false });
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  writeFileSync(join(dir, 'onnx', 'model.onnx'), graph);
}

function writeDistilBert(dir: string, graph: Uint8Array): void {
  copyFileSync(realTokenizer('bert-base-uncased'), join(dir, 'tokenizer.json'));
  json(dir, 'tokenizer_config.json', { tokenizer_class: 'DistilBertTokenizer', model_max_length: QA_WINDOW, do_lower_case: true });
  json(dir, 'config.json', { model_type: 'distilbert', architectures: ['DistilBertForQuestionAnswering'], vocab_size: DISTILBERT.vocabSize, dim: 768, n_layers: 6, n_heads: 12, hidden_dim: 3072, max_position_embeddings: 512, pad_token_id: 0 });
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  writeFileSync(join(dir, 'onnx', 'model.onnx'), graph);
}

// ---------- static int8 quantization (the scheme of scripts/train/quantize.py, on an ONNX graph alone) ----------

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const tensorFloats = (t: OnnxTypes.ITensorProto) => {
  const raw = t.rawData!;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
};

/** The MatMuls to quantize: a 2-D constant weight as the second input (every Linear; attention products stay fp32). */
function linearNodes(g: OnnxTypes.IGraphProto, inits: Map<string, OnnxTypes.ITensorProto>): OnnxTypes.INodeProto[] {
  return g.node!.filter((n) => n.opType === 'MatMul' && inits.has(n.input![1]) && inits.get(n.input![1])!.dims!.length === 2);
}

/** Min and max (0 included) of each Linear's input over real sentences, from one fp32 run per sentence. */
async function activationRanges(model: OnnxTypes.ModelProto, feeds: Record<string, ort.Tensor>[]): Promise<Map<string, [number, number]>> {
  const calib = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = calib.graph!;
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  const xs = [...new Set(linearNodes(g, inits).map((n) => n.input![0]))];
  for (const x of xs) g.output!.push({ name: x, type: { tensorType: { elemType: FLOAT } } });
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(calib).finish(), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const ranges = new Map<string, [number, number]>(xs.map((x) => [x, [0, 0]]));
  for (const f of feeds) {
    const out = await session.run(f, xs);
    for (const x of xs) {
      const r = ranges.get(x)!;
      for (const v of out[x].data as Float32Array) {
        if (v < r[0]) r[0] = v;
        else if (v > r[1]) r[1] = v;
      }
    }
  }
  await session.release();
  return ranges;
}

const int8Tensor = (name: string, dims: number[], data: Int8Array | Uint8Array, dataType: number): OnnxTypes.ITensorProto => ({ name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
const floatTensor = (name: string, dims: number[], data: Float32Array): OnnxTypes.ITensorProto => ({ name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });

/**
 * Every Linear as QuantizeLinear (a constant scale and zero point: the calibrated range) into ONNX Runtime's
 * MatMulIntegerToFloat (int8 weights, a scale per output column, the bias folded in); the word table int8 with
 * a scale per row. Constant activation scales are what keeps a row's output independent of its batch.
 */
export async function quantizeStatic(fp32: Uint8Array, calibration: Record<string, ort.Tensor>[]): Promise<{ bytes: Uint8Array; linears: number }> {
  const model = onnx.ModelProto.decode(fp32);
  const ranges = await activationRanges(model, calibration);
  const g = model.graph!;
  const inits = new Map(g.initializer!.map((t) => [t.name!, t]));
  const uses = new Map<string, number>();
  for (const n of g.node!) for (const i of n.input!) uses.set(i, (uses.get(i) ?? 0) + 1);
  const biasAddOf = new Map<string, OnnxTypes.INodeProto>();
  for (const n of g.node!) {
    if (n.opType !== 'Add') continue;
    const [a, b] = n.input!;
    if (uses.get(a) === 1 && inits.get(b)?.dims?.length === 1) biasAddOf.set(a, n);
  }
  const dropped = new Set<OnnxTypes.INodeProto>();
  const nodes: OnnxTypes.INodeProto[] = [];
  const added: OnnxTypes.ITensorProto[] = [];
  const removed = new Set<string>();
  const U8 = onnx.TensorProto.DataType.UINT8;
  const I8 = onnx.TensorProto.DataType.INT8;
  let linears = 0;
  for (const n of g.node!) {
    if (dropped.has(n)) continue;
    const w = n.opType === 'MatMul' ? inits.get(n.input![1]) : undefined;
    if (w && w.dims!.length === 2) {
      const [rows, cols] = w.dims!.map(Number);
      const W = tensorFloats(w);
      const [lo, hi] = ranges.get(n.input![0])!;
      const sx = Math.max(hi - lo, 1e-8) / 255;
      const zpx = Math.min(255, Math.max(0, Math.round(-lo / sx)));
      const sw = new Float32Array(cols);
      for (let c = 0; c < cols; c++) {
        let m = 0;
        for (let r = 0; r < rows; r++) m = Math.max(m, Math.abs(W[r * cols + c]));
        sw[c] = Math.max(m, 1e-8) / 127;
      }
      const Wq = new Int8Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) Wq[r * cols + c] = Math.max(-127, Math.min(127, Math.round(W[r * cols + c] / sw[c])));
      const base = `${w.name}_int8`;
      added.push(int8Tensor(`${base}_q`, [rows, cols], Wq, I8), int8Tensor(`${base}_zpw`, [cols], new Int8Array(cols), I8), floatTensor(`${base}_sx`, [], Float32Array.of(sx)), int8Tensor(`${base}_zpx`, [], Uint8Array.of(zpx), U8), floatTensor(`${base}_sw`, [cols], sw));
      nodes.push({ opType: 'QuantizeLinear', input: [n.input![0], `${base}_sx`, `${base}_zpx`], output: [`${base}_xq`], name: `${base}_quantize` });
      const ins = [`${base}_xq`, `${base}_q`, `${base}_sx`, `${base}_sw`, `${base}_zpx`, `${base}_zpw`];
      let out = n.output!;
      const add = biasAddOf.get(n.output![0]);
      if (add) {
        ins.push(add.input![1]);
        out = add.output!;
        dropped.add(add);
      }
      nodes.push({ opType: 'MatMulIntegerToFloat', domain: 'com.microsoft', input: ins, output: out, name: `${base}_matmul` });
      removed.add(w.name!);
      linears++;
    } else if (n.opType === 'Gather' && n.input![1] === 'input_ids' && inits.get(n.input![0])?.dims?.length === 2) {
      const t = inits.get(n.input![0])!;
      const [rows, cols] = t.dims!.map(Number);
      const E = tensorFloats(t);
      const s = new Float32Array(rows);
      const q = new Int8Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        let m = 0;
        for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(E[r * cols + c]));
        s[r] = Math.max(m, 1e-8) / 127;
        for (let c = 0; c < cols; c++) q[r * cols + c] = Math.max(-127, Math.min(127, Math.round(E[r * cols + c] / s[r])));
      }
      added.push(int8Tensor('word_q', [rows, cols], q, I8), floatTensor('word_s', [rows, 1], s));
      nodes.push(
        { opType: 'Gather', input: ['word_q', 'input_ids'], output: ['word_gq'], name: 'word_gather_q', attribute: n.attribute },
        { opType: 'Cast', input: ['word_gq'], output: ['word_gf'], name: 'word_cast', attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }] },
        { opType: 'Gather', input: ['word_s', 'input_ids'], output: ['word_gs'], name: 'word_gather_s', attribute: n.attribute },
        { opType: 'Mul', input: ['word_gf', 'word_gs'], output: n.output, name: 'word_scale' },
      );
      removed.add(t.name!);
    } else {
      nodes.push(n);
    }
  }
  g.node = nodes;
  g.initializer = [...g.initializer!.filter((t) => !removed.has(t.name!)), ...added];
  model.opsetImport = [...model.opsetImport!, { domain: 'com.microsoft', version: 1 }];
  model.producerName = 'nlp-gateway stand-in, int8 static (random weights, not a model)';
  return { bytes: onnx.ModelProto.encode(model).finish(), linears };
}

/** Calibration feeds: real sentences (STS Benchmark train) through the real tokenizer, one per run. */
async function calibrationFeeds(tokenizerFile: string, n: number): Promise<Record<string, ort.Tensor>[]> {
  const tsv = readFileSync(new URL('../../shared/data/stsbenchmark/sts-train.csv', import.meta.url), 'utf8');
  const sentences = tsv.split('\n').filter(Boolean).slice(0, n).map((l) => l.split('\t')[5]);
  const tok = await TextTokenizer.fromFile(tokenizerFile, { maxLength: 256 });
  const feeds: Record<string, ort.Tensor>[] = [];
  for (const s of sentences) {
    const { ids } = await tok.encodeTruncated(s);
    const dims = [1, ids.length];
    feeds.push({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), dims), attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), dims), token_type_ids: new ort.Tensor('int64', new BigInt64Array(ids.length), dims) });
  }
  return feeds;
}

/** Bumped whenever what is built here changes (with the option hash, it names the cache folder). */
const BUILD = 1;

/** The three speed-only models, built once per machine into a temp folder and reused. */
export async function standIns(log: (s: string) => void = () => undefined): Promise<{ minilm: StandIn; minilmInt8: StandIn; distilbert: StandIn; root: string }> {
  const key = createHash('sha256').update(JSON.stringify({ BUILD, MINILM, DISTILBERT, QA_WINDOW })).digest('hex').slice(0, 12);
  const root = join(tmpdir(), `nlp-gateway-bench-stand-ins-${key}`);
  const entry = (name: string, like: string, task: StandIn['task'], maxLength: number, params: number): StandIn => {
    const dir = join(root, name);
    return { name, like, task, dir, onnx: join(dir, 'onnx', 'model.onnx'), tokenizer: join(dir, 'tokenizer.json'), zip: join(root, `${name}.zip`), maxLength, params };
  };
  const out = {
    root,
    minilm: entry('minilm-shape', 'all-MiniLM-L6-v2 shape: 6 layers, hidden 384, 12 heads, FFN 1536, vocab 30,522; real tokenizer', 'sentence-similarity', 256, paramsOf(MINILM)),
    minilmInt8: entry('minilm-shape-int8', 'the MiniLM shape quantized to int8 here (static activation scales, per-column weights, int8 word table)', 'sentence-similarity', 256, paramsOf(MINILM)),
    distilbert: entry('distilbert-shape-qa', 'DistilBERT-base SQuAD shape: 6 layers, hidden 768, 12 heads, FFN 3072, vocab 30,522, no token types; real bert-base-uncased tokenizer; 384-token windows', 'question-answering', QA_WINDOW, paramsOf(DISTILBERT)),
  } as const;
  if (existsSync(join(root, 'done'))) return out;
  rmSync(root, { recursive: true, force: true });
  const tmp = `${root}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const t0 = performance.now();
  const at = (s: StandIn) => ({ ...s, dir: join(tmp, s.name), zip: join(tmp, `${s.name}.zip`) });
  for (const s of [out.minilm, out.minilmInt8, out.distilbert]) mkdirSync(at(s).dir, { recursive: true });
  const minilm = buildStandIn(MINILM);
  writeMiniLm(at(out.minilm).dir, minilm);
  const { bytes, linears } = await quantizeStatic(minilm, await calibrationFeeds(join(at(out.minilm).dir, 'tokenizer.json'), 64));
  writeMiniLm(at(out.minilmInt8).dir, bytes);
  writeDistilBert(at(out.distilbert).dir, buildStandIn(DISTILBERT));
  for (const s of [out.minilm, out.minilmInt8, out.distilbert]) await packFolder(at(s).dir, at(s).zip);
  writeFileSync(join(tmp, 'done'), JSON.stringify({ built: new Date().toISOString(), int8_linears: linears, seconds: (performance.now() - t0) / 1000 }));
  renameSync(tmp, root);
  log(`stand-ins (${SPEED_ONLY}) built in ${((performance.now() - t0) / 1000).toFixed(1)} s into ${root}`);
  return out;
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const s = await standIns(console.log);
  console.log(JSON.stringify(s, null, 1));
}
