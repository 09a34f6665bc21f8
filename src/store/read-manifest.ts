/**
 * Reads what an unpacked model declares about itself (../shared/API.md, "Model artifacts"), the way its own
 * library would: gateway.json first, then the Hugging Face files (config.json, tokenizer_config.json,
 * tokenizer.json) and the sentence-transformers ones (modules.json, the Pooling module's config,
 * sentence_bert_config.json) for what gateway.json leaves out. What cannot be known is a BootError naming the
 * model, the file and the field, never a guess.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { BootError } from '../errors.ts';
import { TASK_NAMES, type Task } from '../tasks/catalog.ts';
import type { ModelManifest, Pooling } from './manifest.ts';
import { ONNX_CANDIDATES } from './model-files.ts';

export { ONNX_CANDIDATES };

const STEP = 'loading';
type Json = Record<string, unknown>;
/** Model families whose position ids are computed from input_ids and the pad id (a table with pad + 1 extra rows). */
const PAD_OFFSET_POSITIONS = /roberta|camembert|longformer|xlm-roberta|mpnet/;

/**
 * `graph: false` reads a model whose graph runs on a remote inference server: its folder carries everything but
 * the ONNX file (one that is there is not read), and `onnxPath` is empty.
 */
export async function readManifest(dir: string, name: string, opts: { graph?: boolean } = {}): Promise<ModelManifest> {
  const root = path.resolve(dir);
  const fail = (message: string): never => {
    throw new BootError(name, STEP, message);
  };

  const gateway = (await readJson(root, 'gateway.json', name)) ?? {};
  const config = (await readJson(root, 'config.json', name)) ?? {};
  const tokConfig = (await readJson(root, 'tokenizer_config.json', name)) ?? {};
  const st = await readSentenceTransformers(root, name, fail);
  const field = (key: string): string => `gateway.json "${key}"`;

  // task
  let task: Task | undefined;
  if (gateway.task !== undefined) {
    if (!TASK_NAMES.includes(gateway.task as Task)) fail(`${field('task')} is ${JSON.stringify(gateway.task)}; expected one of ${TASK_NAMES.join(', ')}`);
    task = gateway.task as Task;
  } else {
    task = taskFromConfig(config, st.present);
    if (!task) fail(`no task: set ${field('task')} to one of ${TASK_NAMES.join(', ')} (config.json "architectures" does not tell)`);
  }
  const theTask = task as Task;

  // max_length: the window the model's own library uses, never more than the position table
  // (FACTS: longer inputs crash ONNX Runtime).
  const positions = positionLimit(config);
  let maxLength: number;
  if (gateway.max_length !== undefined) {
    if (!isPositiveInt(gateway.max_length)) fail(`${field('max_length')} must be a positive integer, got ${JSON.stringify(gateway.max_length)}`);
    maxLength = gateway.max_length as number;
    if (positions !== undefined && maxLength > positions) {
      fail(`${field('max_length')} is ${maxLength}, more than the ${positions} positions of config.json "max_position_embeddings"`);
    }
  } else {
    const tokMax = isPositiveInt(tokConfig.model_max_length) && (tokConfig.model_max_length as number) < 1e6 ? (tokConfig.model_max_length as number) : undefined;
    const known = [positions, tokMax, st.maxSeqLength].filter((n): n is number => n !== undefined);
    if (known.length === 0) fail(`no max_length: set ${field('max_length')} (config.json has no "max_position_embeddings")`);
    maxLength = Math.min(...known);
  }

  // labels
  let labels: string[] | undefined;
  if (gateway.labels !== undefined) {
    if (!Array.isArray(gateway.labels) || gateway.labels.length === 0 || !gateway.labels.every((l) => typeof l === 'string' && l.length > 0)) {
      fail(`${field('labels')} must be a non-empty array of non-empty strings`);
    }
    labels = gateway.labels as string[];
  } else if (config.id2label !== undefined && (theTask === 'text-classification' || theTask === 'essay-scoring' || theTask === 'text-ranking')) {
    // Every Hugging Face config has an id2label (LABEL_0, LABEL_1 by default); it means something only for these heads.
    labels = labelsFromId2label(config.id2label, fail);
    if (theTask === 'text-ranking' && labels.length === 1) labels = undefined;
  }
  if (labels && new Set(labels).size !== labels.length) fail(`labels must be distinct; got ${JSON.stringify(labels)}`);
  if (theTask === 'text-classification' && !labels) fail(`no labels: set ${field('labels')} or config.json "id2label"`);

  // output
  let output: ModelManifest['output'];
  if (gateway.output !== undefined) {
    if (gateway.output !== 'softmax' && gateway.output !== 'sigmoid' && gateway.output !== 'identity') {
      fail(`${field('output')} is ${JSON.stringify(gateway.output)}; expected softmax, sigmoid or identity`);
    }
    output = gateway.output as ModelManifest['output'];
  } else {
    const inferred = outputFromConfig(theTask, config, labels);
    if (!inferred) fail(`no output: set ${field('output')} to softmax, sigmoid or identity`);
    output = inferred as ModelManifest['output'];
  }

  // pooling and normalisation (sentence embeddings)
  let pooling: Pooling | undefined;
  if (gateway.pooling !== undefined) {
    if (gateway.pooling !== 'mean' && gateway.pooling !== 'cls' && gateway.pooling !== 'max') fail(`${field('pooling')} is ${JSON.stringify(gateway.pooling)}; expected mean, cls or max`);
    pooling = gateway.pooling as Pooling;
  } else {
    pooling = st.pooling;
  }
  let normalize = st.present ? st.normalize : true;
  if (gateway.normalize !== undefined) {
    if (typeof gateway.normalize !== 'boolean') fail(`${field('normalize')} must be true or false`);
    normalize = gateway.normalize as boolean;
  }

  // score (essay rubric)
  let score: ModelManifest['score'];
  if (gateway.score !== undefined) {
    score = parseScore(gateway.score, labels, fail);
  } else if (theTask === 'essay-scoring') {
    fail(`no score scale: set ${field('score')} to { "min", "max", "round"? } for an essay-scoring model`);
  }

  // thresholds
  let threshold: number | undefined;
  if (gateway.threshold !== undefined) {
    const t = gateway.threshold;
    if (typeof t !== 'number' || !Number.isFinite(t)) fail(`${field('threshold')} must be a number, got ${JSON.stringify(t)}`);
    if (theTask === 'sentence-similarity' && ((t as number) < -1 || (t as number) > 1)) fail(`${field('threshold')} must be a number in [-1, 1] (a cosine), got ${JSON.stringify(t)}`);
    threshold = t as number;
  }
  /** A field that must be a number in [0, 1] when present. */
  const unitInterval = (key: string): number | undefined => {
    const v = gateway[key];
    if (v !== undefined && (typeof v !== 'number' || !(v >= 0 && v <= 1))) fail(`${field(key)} must be a number in [0, 1], got ${JSON.stringify(v)}`);
    return v as number | undefined;
  };
  const noAnswerThreshold = unitInterval('no_answer_threshold');
  const hybridKeywordWeight = unitInterval('hybrid_keyword_weight');
  if (hybridKeywordWeight !== undefined && theTask !== 'sentence-similarity') {
    fail(`${field('hybrid_keyword_weight')} is for sentence-similarity models (collection retrieval); this one is ${theTask}`);
  }
  let positiveLabel: string | undefined;
  if (gateway.positive_label !== undefined) {
    if (typeof gateway.positive_label !== 'string' || gateway.positive_label === '') fail(`${field('positive_label')} must be a label name`);
    positiveLabel = gateway.positive_label as string;
  }

  for (const key of ['version', 'description', 'name'] as const) {
    if (gateway[key] !== undefined && typeof gateway[key] !== 'string') fail(`${field(key)} must be a string`);
  }

  const onnxPath = opts.graph === false ? '' : await findOnnx(root, gateway, fail);
  const tokenizerPath = path.join(root, 'tokenizer.json');
  if (!(await isFile(tokenizerPath))) fail(`tokenizer.json is missing from ${root}`);
  const padId = await padIdOf(gateway, config, tokenizerPath, name, fail);
  const typeVocabSize = isPositiveInt(config.type_vocab_size) ? (config.type_vocab_size as number) : undefined;
  const vocabSize = isPositiveInt(config.vocab_size) ? (config.vocab_size as number) : undefined;

  const manifest: ModelManifest = {
    // The configured name is the one routes use; gateway.json's is informative only.
    name,
    version: (gateway.version as string | undefined) ?? '0',
    task: theTask,
    maxLength,
    output,
    normalize,
    padId,
    description: (gateway.description as string | undefined) ?? '',
    onnxPath,
    dir: root,
    tokenizerPath,
  };
  if (labels) manifest.labels = labels;
  if (pooling) manifest.pooling = pooling;
  if (st.dense) manifest.denseModule = st.dense;
  if (score) manifest.score = score;
  if (threshold !== undefined) manifest.threshold = threshold;
  if (noAnswerThreshold !== undefined) manifest.noAnswerThreshold = noAnswerThreshold;
  if (hybridKeywordWeight !== undefined) manifest.hybridKeywordWeight = hybridKeywordWeight;
  if (positiveLabel !== undefined) manifest.positiveLabel = positiveLabel;
  if (typeVocabSize !== undefined) manifest.typeVocabSize = typeVocabSize;
  if (vocabSize !== undefined) manifest.vocabSize = vocabSize;
  return manifest;
}

async function readJson(root: string, file: string, model: string): Promise<Json | undefined> {
  const value = await readJsonValue(root, file, model);
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BootError(model, STEP, `${file} must hold a JSON object`);
  }
  return value as Json;
}

async function readJsonValue(root: string, file: string, model: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path.join(root, file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BootError(model, STEP, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BootError(model, STEP, `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/**
 * The task from the Hugging Face config, only where it is unambiguous: a QA head; a sequence-classification
 * head saved by sentence-transformers' CrossEncoder (config.json "sentence_transformers") is a ranker, any other
 * a classifier; a bare encoder with sentence-transformers' modules.json is a sentence embedder.
 */
function taskFromConfig(config: Json, sentenceTransformers: boolean): Task | undefined {
  const arch = config.architectures;
  const a = Array.isArray(arch) && typeof arch[0] === 'string' ? (arch[0] as string) : '';
  if (a.endsWith('ForQuestionAnswering')) return 'question-answering';
  if (a.endsWith('ForSequenceClassification')) return config.sentence_transformers !== undefined ? 'text-ranking' : 'text-classification';
  if (sentenceTransformers) return 'sentence-similarity';
  return undefined;
}

/** Usable positions: RoBERTa-family tables hold padding_idx + 1 extra rows. */
function positionLimit(config: Json): number | undefined {
  const n = config.max_position_embeddings;
  if (!isPositiveInt(n)) return undefined;
  const type = typeof config.model_type === 'string' ? config.model_type : '';
  if (PAD_OFFSET_POSITIONS.test(type) && isPositiveInt(config.pad_token_id)) return n - config.pad_token_id - 1;
  return n;
}

function labelsFromId2label(id2label: unknown, fail: (m: string) => never): string[] {
  if (typeof id2label !== 'object' || id2label === null || Array.isArray(id2label)) fail('config.json "id2label" must be an object of index → label');
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels: string[] = new Array<string>(entries.length);
  for (const [k, v] of entries) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i >= entries.length || typeof v !== 'string' || labels[i] !== undefined) {
      fail(`config.json "id2label" must map 0..${entries.length - 1} to label strings; bad entry ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
    }
    labels[i] = v as string;
  }
  if (labels.length === 0) fail('config.json "id2label" is empty');
  return labels;
}

/** Hugging Face and sentence-transformers conventions; undefined when they leave it open. */
function outputFromConfig(task: Task, config: Json, labels: string[] | undefined): ModelManifest['output'] | undefined {
  if (task === 'question-answering' || task === 'sentence-similarity') return 'identity';
  if (task === 'text-ranking') {
    // CrossEncoder: Sigmoid for one logit unless its saved activation says otherwise; softmax over classes.
    const act = (config.sentence_transformers as Json | undefined)?.activation_fn;
    if (typeof act === 'string' && /Identity$/.test(act)) return 'identity';
    return labels && labels.length > 1 ? 'softmax' : 'sigmoid';
  }
  const problem = config.problem_type;
  if (problem === 'multi_label_classification') return 'sigmoid';
  if (problem === 'single_label_classification') return 'softmax';
  if (problem === 'regression') return 'identity';
  if (task === 'text-classification') return 'softmax';
  // essay-scoring: bands are classes, one output is a regression.
  if (labels && labels.length > 1) return 'softmax';
  if (config.num_labels === 1 || labels?.length === 1) return 'identity';
  return undefined;
}

interface SentenceTransformersFacts {
  /** modules.json or a Pooling config is there: this is a sentence-transformers export. */
  present: boolean;
  pooling?: Pooling;
  normalize: boolean;
  /** Path of a Dense module, when modules.json lists one. */
  dense?: string;
  /** sentence_bert_config.json "max_seq_length": the window sentence-transformers cuts to. */
  maxSeqLength?: number;
}

/**
 * sentence-transformers reads modules.json (Transformer → Pooling → Dense? → Normalize?), the Pooling
 * module's config.json and sentence_bert_config.json; so does this.
 */
async function readSentenceTransformers(root: string, model: string, fail: (m: string) => never): Promise<SentenceTransformersFacts> {
  const modules = await readJsonValue(root, 'modules.json', model);
  let poolingPath = '1_Pooling';
  let normalize = false;
  let dense: string | undefined;
  if (modules !== undefined) {
    if (!Array.isArray(modules)) fail('modules.json must hold a list of modules');
    for (const m of modules as unknown[]) {
      const mod = (m ?? {}) as Json;
      const type = typeof mod.type === 'string' ? mod.type : '';
      const where = typeof mod.path === 'string' ? mod.path : '';
      if (/\.Pooling$/.test(type)) poolingPath = where;
      else if (/\.Normalize$/.test(type)) normalize = true;
      else if (/\.Dense$/.test(type)) dense = where;
    }
  }
  const poolingFile = `${poolingPath ? `${poolingPath}/` : ''}config.json`;
  const poolingConfig = poolingPath ? await readJson(root, poolingFile, model) : undefined;
  const stConfig = await readJson(root, 'sentence_bert_config.json', model);
  const facts: SentenceTransformersFacts = { present: modules !== undefined || poolingConfig !== undefined, normalize, dense };
  if (poolingConfig) facts.pooling = poolingMode(poolingConfig, poolingFile, fail);
  if (stConfig?.max_seq_length !== undefined) {
    if (!isPositiveInt(stConfig.max_seq_length)) fail(`sentence_bert_config.json "max_seq_length" must be a positive integer, got ${JSON.stringify(stConfig.max_seq_length)}`);
    facts.maxSeqLength = stConfig.max_seq_length as number;
  }
  return facts;
}

const POOLING_FLAGS: Record<string, Pooling | null> = {
  pooling_mode_cls_token: 'cls',
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_max_tokens: 'max',
  pooling_mode_mean_sqrt_len_tokens: null,
  pooling_mode_weightedmean_tokens: null,
  pooling_mode_lasttoken: null,
};

function poolingMode(config: Json, file: string, fail: (m: string) => never): Pooling {
  if (typeof config.pooling_mode === 'string') {
    if (config.pooling_mode === 'cls' || config.pooling_mode === 'mean' || config.pooling_mode === 'max') return config.pooling_mode;
    fail(`${file} "pooling_mode" is ${JSON.stringify(config.pooling_mode)}; the gateway pools with cls, mean or max`);
  }
  const on = Object.keys(POOLING_FLAGS).filter((k) => config[k] === true);
  if (on.length !== 1) fail(`${file} must set exactly one pooling mode; it sets ${on.length ? on.join(', ') : 'none'}`);
  const mode = POOLING_FLAGS[on[0]];
  if (!mode) fail(`${file} "${on[0]}" is not supported; the gateway pools with cls, mean or max`);
  return mode as Pooling;
}

/**
 * The pad id: config.json's, else the padding tokenizer.json declares, else the tokenizer's [PAD] / <pad>.
 * It matters where position ids are computed from input_ids (RoBERTa family): there an unknown one is an
 * error. Elsewhere the attention mask hides padding and 0 is as good as any.
 */
async function padIdOf(gateway: Json, config: Json, tokenizerPath: string, model: string, fail: (m: string) => never): Promise<number> {
  if (gateway.pad_id !== undefined) {
    if (!Number.isInteger(gateway.pad_id) || (gateway.pad_id as number) < 0) fail('gateway.json "pad_id" must be a token id');
    return gateway.pad_id as number;
  }
  if (Number.isInteger(config.pad_token_id) && (config.pad_token_id as number) >= 0) return config.pad_token_id as number;
  let tok: Json | undefined;
  try {
    const parsed: unknown = JSON.parse(await readFile(tokenizerPath, 'utf8'));
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) tok = parsed as Json;
  } catch (err) {
    throw new BootError(model, STEP, `tokenizer.json is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const padding = tok?.padding as Json | null | undefined;
  if (padding && Number.isInteger(padding.pad_id)) return padding.pad_id as number;
  const added = Array.isArray(tok?.added_tokens) ? (tok.added_tokens as Json[]) : [];
  const pad = added.find((t) => t.content === '[PAD]' || t.content === '<pad>');
  if (pad && Number.isInteger(pad.id)) return pad.id as number;
  const type = typeof config.model_type === 'string' ? config.model_type : '';
  if (PAD_OFFSET_POSITIONS.test(type)) fail(`no pad id for a ${type} model, whose position ids depend on it: set config.json "pad_token_id" or gateway.json "pad_id"`);
  return 0;
}

function parseScore(raw: unknown, labels: string[] | undefined, fail: (m: string) => never): ModelManifest['score'] {
  const where = 'gateway.json "score"';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${where} must be an object { min, max, round? }`);
  const s = raw as Json;
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  if (!num(s.min) || !num(s.max) || s.min >= s.max) fail(`${where} needs numbers min < max, got ${JSON.stringify(raw)}`);
  const out: NonNullable<ModelManifest['score']> = { min: s.min as number, max: s.max as number };
  if (s.round !== undefined) {
    if (!num(s.round) || s.round <= 0) fail(`${where}.round must be a positive number`);
    out.round = s.round as number;
  }
  const bands = s.bandScores ?? s.band_scores;
  if (bands !== undefined) {
    if (!Array.isArray(bands) || !bands.every(num)) fail(`${where}.bandScores must be an array of numbers`);
    const b = bands as number[];
    if (!labels || b.length !== labels.length) fail(`${where}.bandScores has ${b.length} values but the model has ${labels?.length ?? 0} labels`);
    out.bandScores = b;
  }
  return out;
}

async function findOnnx(root: string, gateway: Json, fail: (m: string) => never): Promise<string> {
  const named = gateway.onnx ?? gateway.onnx_path;
  if (named !== undefined) {
    const key = gateway.onnx !== undefined ? 'onnx' : 'onnx_path';
    if (typeof named !== 'string' || named === '') fail(`gateway.json "${key}" must be a relative path to the ONNX file`);
    const rel = path.normalize(named as string);
    if (path.isAbsolute(rel) || rel.startsWith('..')) fail(`gateway.json "${key}" must stay inside the model folder, got ${JSON.stringify(named)}`);
    if (!(await isFile(path.join(root, rel)))) fail(`gateway.json "${key}" names ${rel}, which is not in ${root}`);
    return rel.split(path.sep).join('/');
  }
  for (const candidate of ONNX_CANDIDATES) {
    if (await isFile(path.join(root, candidate))) return candidate;
  }
  return fail(`no ONNX graph in ${root}: looked for ${ONNX_CANDIDATES.join(', ')} (or name one in gateway.json "onnx")`);
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}
