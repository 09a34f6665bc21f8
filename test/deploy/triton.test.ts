/**
 * The Triton side of `docker compose --profile triton up`, checked without Docker or Triton: the model
 * repository scripts/triton-repository.ts (and publish-model --triton-repo) lays out, each config.pbtxt read
 * as protobuf text and checked against the fields of Triton's documented model configuration
 * (model_config.proto: ModelConfig, ModelInput, ModelOutput, ModelDynamicBatching, ModelInstanceGroup,
 * DataType), against the graph itself, and the compose services and gateway config that use it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { DEMO_MODELS, demoZip } from '../helpers/app.ts';
import { readZip } from '../helpers/unzip.ts';
import { checkMessage, parsePbtxt, type PbMessage, type Schema } from '../helpers/pbtxt.ts';
import { graphTensors, layoutTritonModel, tritonConfig, TritonLayoutError } from '../../scripts/triton-repository.ts';
import { publish } from '../../scripts/publish-model.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ROOT } from './harness.ts';

const DATA_TYPES = ['TYPE_INVALID', 'TYPE_BOOL', 'TYPE_UINT8', 'TYPE_UINT16', 'TYPE_UINT32', 'TYPE_UINT64', 'TYPE_INT8', 'TYPE_INT16', 'TYPE_INT32', 'TYPE_INT64', 'TYPE_FP16', 'TYPE_FP32', 'TYPE_FP64', 'TYPE_STRING', 'TYPE_BF16'] as const;

/** The part of Triton's ModelConfig (model_config.proto) a generated config may use, field by field. */
const MODEL_CONFIG: Schema = {
  ModelConfig: {
    name: { type: 'string' },
    platform: { type: 'string' },
    backend: { type: 'string' },
    max_batch_size: { type: 'int' },
    input: { type: { message: 'ModelInput' }, repeated: true },
    output: { type: { message: 'ModelOutput' }, repeated: true },
    dynamic_batching: { type: { message: 'ModelDynamicBatching' } },
    instance_group: { type: { message: 'ModelInstanceGroup' }, repeated: true },
    default_model_filename: { type: 'string' },
  },
  ModelInput: {
    name: { type: 'string' },
    data_type: { type: { enum: DATA_TYPES } },
    format: { type: { enum: ['FORMAT_NONE', 'FORMAT_NHWC', 'FORMAT_NCHW'] } },
    dims: { type: 'int', repeated: true },
    is_shape_tensor: { type: 'bool' },
    allow_ragged_batch: { type: 'bool' },
    optional: { type: 'bool' },
  },
  ModelOutput: {
    name: { type: 'string' },
    data_type: { type: { enum: DATA_TYPES } },
    dims: { type: 'int', repeated: true },
    label_filename: { type: 'string' },
    is_shape_tensor: { type: 'bool' },
  },
  ModelDynamicBatching: {
    preferred_batch_size: { type: 'int', repeated: true },
    max_queue_delay_microseconds: { type: 'int' },
    preserve_ordering: { type: 'bool' },
  },
  ModelInstanceGroup: {
    name: { type: 'string' },
    kind: { type: { enum: ['KIND_AUTO', 'KIND_GPU', 'KIND_CPU', 'KIND_MODEL'] } },
    count: { type: 'int' },
    gpus: { type: 'int', repeated: true },
  },
};

const ONNX_TO_TRITON: Record<string, string> = { int64: 'TYPE_INT64', float32: 'TYPE_FP32', int32: 'TYPE_INT32' };
const one = <T>(m: PbMessage, f: string) => m[f]?.[0] as T;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('Triton model repository', () => {
  let repo: string;
  beforeAll(async () => {
    repo = mkdtempSync(path.join(os.tmpdir(), 'triton-repo-'));
    for (const m of DEMO_MODELS) await layoutTritonModel(demoZip(m), repo);
  }, 60_000);
  afterAll(() => rmSync(repo, { recursive: true, force: true }));

  it('lays out <name>/config.pbtxt and <name>/1/model.onnx per model, the graph byte for byte', async () => {
    expect(readdirSync(repo).sort()).toEqual([...DEMO_MODELS].sort());
    for (const m of DEMO_MODELS) {
      expect(readdirSync(path.join(repo, m)).sort()).toEqual(['1', 'config.pbtxt']);
      expect(readdirSync(path.join(repo, m, '1'))).toEqual(['model.onnx']);
      const zipped = (await readZip(demoZip(m)))['model.onnx']!;
      expect(sha(readFileSync(path.join(repo, m, '1', 'model.onnx')))).toBe(sha(zipped));
    }
  });

  it('each config.pbtxt uses only fields and enum values of Triton\'s model configuration, with the right types', () => {
    for (const m of DEMO_MODELS) {
      const config = parsePbtxt(readFileSync(path.join(repo, m, 'config.pbtxt'), 'utf8'));
      expect(checkMessage(config, 'ModelConfig', MODEL_CONFIG), m).toEqual([]);
    }
    // The check itself catches what Triton would refuse to load.
    const wrong = parsePbtxt('name: "x"\nmax_batch: 3\nmax_batch_size: "32"\ninput [ { name: "a" data_type: TYPE_INT65 dims: [ -1 ] } ]\ninstance_group [ { kind: KIND_TPU } ]');
    expect(checkMessage(wrong, 'ModelConfig', MODEL_CONFIG)).toEqual([
      'ModelConfig.max_batch: not a field of ModelConfig',
      'ModelConfig.max_batch_size: expected an integer',
      expect.stringMatching(/^ModelConfig\.input\[0\]\.data_type: expected one of TYPE_INVALID/),
      expect.stringMatching(/^ModelConfig\.instance_group\[0\]\.kind: expected one of KIND_AUTO/),
    ]);
  });

  it('names the model as its folder, runs it with onnxruntime_onnx, batches dynamically, and declares the graph\'s inputs and outputs (batch axis left out, -1 for dynamic axes)', async () => {
    for (const m of DEMO_MODELS) {
      const config = parsePbtxt(readFileSync(path.join(repo, m, 'config.pbtxt'), 'utf8'));
      expect(one<string>(config, 'name')).toBe(m);
      expect(one<string>(config, 'platform')).toBe('onnxruntime_onnx');
      const maxBatch = one<number>(config, 'max_batch_size');
      expect(maxBatch).toBeGreaterThanOrEqual(loadConfig({ env: {} }).inference.maxBatchSize);
      expect(config.dynamic_batching).toHaveLength(1);
      expect(one<number>(one<PbMessage>(config, 'dynamic_batching'), 'max_queue_delay_microseconds')).toBeGreaterThanOrEqual(0);
      expect(config.instance_group?.length).toBeGreaterThan(0);
      const graph = await graphTensors(path.join(repo, m, '1', 'model.onnx'));
      for (const [field, tensors] of [['input', graph.inputs], ['output', graph.outputs]] as const) {
        const declared = (config[field] as PbMessage[]).map((t) => ({ name: one<string>(t, 'name'), data_type: (one<{ enum: string }>(t, 'data_type')).enum, dims: t.dims as number[] }));
        const expected = tensors.map((t) => ({ name: t.name, data_type: ONNX_TO_TRITON[t.type], dims: t.dims.slice(1).map((d) => (typeof d === 'number' && d >= 0 ? d : -1)) }));
        expect(declared, `${m} ${field}`).toEqual(expected);
        // max_batch_size > 0: Triton prepends the batch axis, so the graph's first axis must be dynamic.
        for (const t of tensors) expect(typeof t.dims[0] === 'string' || (t.dims[0] as number) < 0, `${m} ${t.name} batch axis`).toBe(true);
      }
    }
  });

  it('the demo configs have what the gateway needs: token inputs INT64 [-1]; sentence_embedding [256], logits [N]', () => {
    const io = (m: string) => {
      const c = parsePbtxt(readFileSync(path.join(repo, m, 'config.pbtxt'), 'utf8'));
      return Object.fromEntries([...(c.input as PbMessage[]), ...(c.output as PbMessage[])].map((t) => [one<string>(t, 'name'), t.dims]));
    };
    expect(io('sts-demo')).toEqual({ input_ids: [-1], attention_mask: [-1], token_type_ids: [-1], sentence_embedding: [256] });
    expect(io('qa-demo')).toMatchObject({ start_logits: [-1], end_logits: [-1] });
    expect(io('classify-demo').logits).toEqual([10]);
    expect(io('essay-demo').logits).toEqual([1]);
  });

  it('refuses a graph without a dynamic batch axis and types Triton cannot take', () => {
    expect(() => tritonConfig('m', [{ name: 'input_ids', type: 'int64', dims: [1, 'sequence'] }], [])).toThrow(TritonLayoutError);
    expect(() => tritonConfig('m', [{ name: 'x', type: 'complex64', dims: ['batch'] }], [])).toThrow(/element type complex64/);
    expect(() => tritonConfig('m', [], [], { maxBatchSize: 0, maxQueueDelayMicroseconds: 0, instanceKind: 'KIND_CPU', instanceCount: 1 })).toThrow(/max_batch_size/);
  });

  it('publish-model --triton-repo lays out the same and prints an entry with a kserve-v2 backend', async () => {
    const other = mkdtempSync(path.join(os.tmpdir(), 'triton-repo-publish-'));
    try {
      const entry = await publish({ zip: demoZip('classify-demo'), bucket: '', tritonRepo: other, tritonUrl: 'http://triton.internal:8000' });
      expect(entry).toMatchObject({ name: 'classify-demo', source: path.resolve(demoZip('classify-demo')), backend: { kind: 'kserve-v2', url: 'http://triton.internal:8000' } });
      expect(readFileSync(path.join(other, 'classify-demo', 'config.pbtxt'), 'utf8')).toBe(readFileSync(path.join(repo, 'classify-demo', 'config.pbtxt'), 'utf8'));
      // The printed entry is a valid model entry of the gateway config.
      expect(loadConfig({ env: {}, overrides: { models: [entry] } }).models[0]!.backend?.url).toBe('http://triton.internal:8000');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

type Service = {
  profiles?: string[];
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  volumes?: (string | { type: string; target: string })[];
  ports?: string[];
};

describe('docker compose --profile triton', () => {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const s = compose.services;
  const config = JSON.parse(readFileSync(path.join(ROOT, 'config/triton.json'), 'utf8')) as { models: { name: string }[] };

  it('adds a repository job, Triton and a gateway on it, all in the triton profile only', () => {
    for (const n of ['triton-repo', 'triton', 'gateway-triton']) expect(s[n]?.profiles, n).toEqual(['triton']);
    expect(s.triton!.image).toMatch(/^nvcr\.io\/nvidia\/tritonserver:\d{2}\.\d{2}-py3$/);
  });

  it('the job lays out exactly the models config/triton.json serves, into the volume Triton reads', () => {
    const script = s['triton-repo']!.command!.join('\n');
    expect(script).toContain('scripts/triton-repository.ts --repo /models');
    const laid = /for m in ([^;]+);/.exec(script)![1]!.trim().split(/\s+/);
    expect(laid.sort()).toEqual(config.models.map((m) => m.name).sort());
    expect(s['triton-repo']!.volumes).toEqual(['triton-models:/models']);
    expect(s.triton!.volumes).toEqual(['triton-models:/models:ro']);
    expect(compose.volumes).toHaveProperty('triton-models');
    expect(s.triton!.command).toContain('--model-repository=/models');
  });

  it('starts in order: repository laid out → Triton ready (/v2/health/ready) → the gateway, whose readiness follows its remote models', () => {
    expect(s.triton!.depends_on).toEqual({ 'triton-repo': { condition: 'service_completed_successfully' } });
    expect(s['gateway-triton']!.depends_on).toEqual({ triton: { condition: 'service_healthy' } });
    expect(s.triton!.healthcheck!.test!.join(' ')).toContain('/v2/health/ready');
    expect(s['gateway-triton']!.healthcheck!.test!.join(' ')).toContain('/health/ready');
    expect(s['gateway-triton']!.environment!.GATEWAY_CONFIG).toBe('/app/config/triton.json');
  });

  it('config/triton.json validates: every model runs on http://triton:8000 under its repository name, from a zip baked into the image', () => {
    const loaded = loadConfig({ env: { GATEWAY_CONFIG: path.join(ROOT, 'config/triton.json') } });
    expect(loaded.models.length).toBe(DEMO_MODELS.length);
    for (const m of loaded.models) {
      expect(m.backend).toMatchObject({ kind: 'kserve-v2', url: 'http://triton:8000' });
      expect(m.backend!.model ?? m.name).toBe(m.name);
      expect(m.source).toBe(`models/${m.name}.zip`);
    }
  });
});
