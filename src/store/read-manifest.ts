/**
 * Reads what an unpacked model declares about itself (../shared/API.md, "Model artifacts"):
 * gateway.json first, then the Hugging Face files (config.json, tokenizer_config.json,
 * sentence-transformers' 1_Pooling/config.json) for what gateway.json leaves out. What cannot be
 * known is a BootError naming the model, the file and the field.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { BootError } from '../errors.ts';
import { TASKS, type ModelManifest, type Task } from './manifest.ts';

/** Where the ONNX graph is looked for when gateway.json names none; the first found wins. */
export const ONNX_CANDIDATES = ['model.onnx', 'onnx/model.onnx', 'onnx/model_quantized.onnx'] as const;

const STEP = 'loading';
type Json = Record<string, unknown>;

export async function readManifest(dir: string, name: string): Promise<ModelManifest> {
  const root = path.resolve(dir);
  const fail = (message: string): never => {
    throw new BootError(name, STEP, message);
  };

  const gateway = (await readJson(root, 'gateway.json', name)) ?? {};
  const config = (await readJson(root, 'config.json', name)) ?? {};
  const tokConfig = (await readJson(root, 'tokenizer_config.json', name)) ?? {};
  const field = (key: string): string => `gateway.json "${key}"`;

  // task
  let task: Task | undefined;
  if (gateway.task !== undefined) {
    if (!TASKS.includes(gateway.task as Task)) fail(`${field('task')} is ${JSON.stringify(gateway.task)}; expected one of ${TASKS.join(', ')}`);
    task = gateway.task as Task;
  } else {
    task = taskFromArchitectures(config.architectures);
    if (!task) fail(`no task: set ${field('task')} to one of ${TASKS.join(', ')} (config.json "architectures" does not tell)`);
  }
  const theTask = task as Task;

  // max_length: never more than the position table (FACTS: longer inputs crash ONNX Runtime).
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
    const known = [positions, tokMax].filter((n): n is number => n !== undefined);
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
  } else if (config.id2label !== undefined && (theTask === 'text-classification' || theTask === 'essay-scoring')) {
    // Every Hugging Face config has an id2label (LABEL_0, LABEL_1 by default); it means something only for these heads.
    labels = labelsFromId2label(config.id2label, fail);
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

  // pooling
  let pooling: ModelManifest['pooling'];
  if (gateway.pooling !== undefined) {
    if (gateway.pooling !== 'mean' && gateway.pooling !== 'cls') fail(`${field('pooling')} is ${JSON.stringify(gateway.pooling)}; expected mean or cls`);
    pooling = gateway.pooling as ModelManifest['pooling'];
  } else {
    pooling = await poolingFromSentenceTransformers(root, name);
  }

  // score (essay rubric)
  let score: ModelManifest['score'];
  if (gateway.score !== undefined) {
    score = parseScore(gateway.score, labels, fail);
  } else if (theTask === 'essay-scoring') {
    fail(`no score scale: set ${field('score')} to { "min", "max", "round"? } for an essay-scoring model`);
  }

  // threshold
  let threshold: number | undefined;
  if (gateway.threshold !== undefined) {
    if (typeof gateway.threshold !== 'number' || !Number.isFinite(gateway.threshold) || gateway.threshold < -1 || gateway.threshold > 1) {
      fail(`${field('threshold')} must be a number in [-1, 1], got ${JSON.stringify(gateway.threshold)}`);
    }
    threshold = gateway.threshold as number;
  }

  for (const key of ['version', 'description', 'name'] as const) {
    if (gateway[key] !== undefined && typeof gateway[key] !== 'string') fail(`${field(key)} must be a string`);
  }

  const onnxPath = await findOnnx(root, gateway, fail);
  const tokenizerPath = path.join(root, 'tokenizer.json');
  if (!(await isFile(tokenizerPath))) fail(`tokenizer.json is missing from ${root}`);

  const manifest: ModelManifest = {
    // The configured name is the one routes use; gateway.json's is informative only.
    name,
    version: (gateway.version as string | undefined) ?? '0',
    task: theTask,
    maxLength,
    output,
    description: (gateway.description as string | undefined) ?? '',
    onnxPath,
    dir: root,
    tokenizerPath,
  };
  if (labels) manifest.labels = labels;
  if (pooling) manifest.pooling = pooling;
  if (score) manifest.score = score;
  if (threshold !== undefined) manifest.threshold = threshold;
  return manifest;
}

async function readJson(root: string, file: string, model: string): Promise<Json | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(root, file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BootError(model, STEP, `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new BootError(model, STEP, `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new BootError(model, STEP, `${file} must hold a JSON object`);
  }
  return value as Json;
}

function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/** Hugging Face architecture names that say the task unambiguously. */
function taskFromArchitectures(arch: unknown): Task | undefined {
  if (!Array.isArray(arch) || typeof arch[0] !== 'string') return undefined;
  const a = arch[0] as string;
  if (a.endsWith('ForQuestionAnswering')) return 'question-answering';
  if (a.endsWith('ForSequenceClassification')) return 'text-classification';
  return undefined;
}

/** Usable positions: RoBERTa-family tables hold padding_idx + 1 extra rows. */
function positionLimit(config: Json): number | undefined {
  const n = config.max_position_embeddings;
  if (!isPositiveInt(n)) return undefined;
  const type = typeof config.model_type === 'string' ? config.model_type : '';
  if (/roberta|camembert|longformer/.test(type) && isPositiveInt(config.pad_token_id)) return n - config.pad_token_id - 1;
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

/** Hugging Face conventions; undefined when they leave it open. */
function outputFromConfig(task: Task, config: Json, labels: string[] | undefined): ModelManifest['output'] | undefined {
  if (task === 'question-answering' || task === 'sentence-similarity') return 'identity';
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

async function poolingFromSentenceTransformers(root: string, model: string): Promise<ModelManifest['pooling']> {
  const p = await readJson(root, '1_Pooling/config.json', model);
  if (!p) return undefined;
  if (p.pooling_mode_cls_token === true) return 'cls';
  if (p.pooling_mode_mean_tokens === true) return 'mean';
  return undefined;
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
