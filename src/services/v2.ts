/**
 * Open Inference Protocol (KServe v2) inference on a served model: the caller's token tensors in, the graph's
 * raw output tensors out. The batch is taken apart into rows and each row goes through the model's raw queue
 * (same scheduler and workers as every task route, so rows of several callers share batches), then put back
 * together at the caller's shape. Positions the attention mask leaves out come back as 0: they are padding,
 * and what a graph computes there depends on the batch it ran in.
 */
import { GatewayError } from '../errors.ts';
import type { Sequence } from '../inference/batcher.ts';
import type { ServingModel } from '../inference/registry.ts';
import { float32Bytes, ProtocolError, readIntTensor, sliceBinary, type InferenceRequest, type InferenceResponse, type RequestOutput, type ResponseOutput } from '../inference/v2/tensors.ts';
import type { ServiceContext } from './context.ts';

const bad = (message: string) => new GatewayError('invalid_request', message);

export interface V2Answer {
  response: InferenceResponse;
  /** Binary tensor data, in the order of the outputs that carry binary_data_size. */
  parts: Buffer[];
}

/** Rows of a [batch, seq] request: ids and token types cut to the length its attention mask gives. */
function rowsOf(model: ServingModel, req: InferenceRequest, binary: Buffer): { seqs: Sequence[]; batch: number; seq: number } {
  let parts: (Buffer | undefined)[];
  try {
    parts = sliceBinary(req.inputs, binary, 'inputs');
  } catch (err) {
    throw bad((err as Error).message);
  }
  const expected = model.graph.inputNames;
  const byName = new Map<string, { values: Int32Array; shape: number[] }>();
  req.inputs.forEach((t, i) => {
    const where = `inputs[${i}] (${t.name})`;
    if (!expected.includes(t.name)) throw bad(`${where}: model "${model.name}" has no input ${JSON.stringify(t.name)}; its inputs are ${expected.join(', ')}`);
    if (byName.has(t.name)) throw bad(`${where}: input ${t.name} is given twice`);
    try {
      byName.set(t.name, { values: readIntTensor(t, parts[i], where), shape: t.shape });
    } catch (err) {
      throw err instanceof ProtocolError ? bad(err.message) : err;
    }
  });
  const missing = expected.filter((n) => !byName.has(n));
  if (missing.length) throw bad(`model "${model.name}" needs input ${missing.join(', ')}`);
  const ids = byName.get('input_ids')!;
  if (ids.shape.length !== 2) throw bad(`input_ids must have shape [batch, sequence], got ${JSON.stringify(ids.shape)}`);
  const [batch, seq] = ids.shape;
  if (batch < 1 || seq < 1) throw bad(`input_ids must hold at least one row of one token, got shape ${JSON.stringify(ids.shape)}`);
  for (const [name, t] of byName) {
    if (t.shape.length !== 2 || t.shape[0] !== batch || t.shape[1] !== seq) throw bad(`${name} has shape ${JSON.stringify(t.shape)}; every input must have the shape of input_ids, ${JSON.stringify(ids.shape)}`);
  }
  const max = model.manifest.maxLength;
  if (seq > max) throw new GatewayError('too_large', `input_ids has ${seq} positions; model "${model.name}" takes at most ${max}`, { details: { tokens: seq, max_tokens: max } });
  // Ids past the embedding tables would fail inside the graph (a Gather out of bounds): refuse them here.
  const { vocabSize, typeVocabSize } = model.manifest;
  const outOfRange = (name: string, values: Int32Array, size: number | undefined) => {
    const at = values.findIndex((v) => v < 0 || (size !== undefined && v >= size));
    if (at >= 0) throw bad(`${name}[${at}] is ${values[at]}; model "${model.name}" takes ${name === 'input_ids' ? 'token ids' : 'token types'} from 0${size === undefined ? '' : ` to ${size - 1}`}`);
  };
  outOfRange('input_ids', ids.values, vocabSize);
  const mask = byName.get('attention_mask')!.values;
  const types = byName.get('token_type_ids')?.values;
  if (types && typeVocabSize !== 1) outOfRange('token_type_ids', types, typeVocabSize);
  const seqs: Sequence[] = [];
  for (let b = 0; b < batch; b++) {
    const row = mask.subarray(b * seq, (b + 1) * seq);
    let len = 0;
    while (len < seq && row[len] === 1) len++;
    for (let t = len; t < seq; t++) {
      if (row[t] !== 0) throw bad(`attention_mask row ${b} must be 1s followed by 0s (right padding); position ${t} is ${row[t]} after a 0`);
    }
    if (len === 0) throw bad(`attention_mask row ${b} keeps no token`);
    const start = b * seq;
    seqs.push({ ids: Array.from(ids.values.subarray(start, start + len)), typeIds: types ? Array.from(types.subarray(start, start + len)) : new Array<number>(len).fill(0) });
  }
  return { seqs, batch, seq };
}

/** Runs a v2 inference request: outputs come back as binary data where they or binary_data_output ask for it. */
export async function inferV2(model: ServingModel, req: InferenceRequest, binary: Buffer, ctx: ServiceContext): Promise<V2Answer> {
  const spec = model.rawBatcher.spec;
  const requested: RequestOutput[] = req.outputs ?? spec.fetches.map((name) => ({ name }));
  requested.forEach((o, i) => {
    if (!spec.fetches.includes(o.name)) throw bad(`outputs[${i}]: model "${model.name}" has no output ${JSON.stringify(o.name)}; its outputs are ${spec.fetches.join(', ')}`);
    const flag = o.parameters?.binary_data;
    if (flag !== undefined && typeof flag !== 'boolean') throw bad(`outputs[${i}].parameters.binary_data must be true or false`);
  });
  const all = req.parameters?.binary_data_output;
  if (all !== undefined && typeof all !== 'boolean') throw bad('parameters.binary_data_output must be true or false');
  const { seqs, batch, seq } = rowsOf(model, req, binary);

  model.rawBatcher.admit(seqs.length);
  ctx.timings.model = model.name;
  const res = await model.rawBatcher.submit(seqs, { signal: ctx.signal });
  ctx.timings.queueMs += res.queueMs;
  ctx.timings.inferenceMs += res.inferenceMs;

  const parts: Buffer[] = [];
  const outputs: ResponseOutput[] = requested.map((o) => {
    const isSeq = spec.sequenceOutputs.includes(o.name);
    const first = res.rows[0][o.name];
    // Per token (sequence outputs) or per row: the trailing dims, known from the first row.
    const inner = isSeq ? first.length / seqs[0].ids.length : first.length;
    const rest = innerDims(model, o.name, inner, isSeq);
    const rowSize = isSeq ? seq * inner : inner;
    const data = new Float32Array(batch * rowSize);
    res.rows.forEach((row, b) => data.set(row[o.name], b * rowSize));
    const shape = isSeq ? [batch, seq, ...rest] : [batch, ...rest];
    if (o.parameters?.binary_data ?? all ?? false) {
      const bytes = float32Bytes(data);
      parts.push(bytes);
      return { name: o.name, datatype: 'FP32', shape, parameters: { binary_data_size: bytes.length } };
    }
    return { name: o.name, datatype: 'FP32', shape, data: Array.from(data) };
  });
  const response: InferenceResponse = { model_name: model.name, model_version: model.version, ...(req.id !== undefined ? { id: req.id } : {}), outputs };
  return { response, parts };
}

/**
 * The dims after [batch] (or [batch, seq]) of an output: the graph's static ones where it declares them, else
 * the one dimension the row size gives (e.g. [128] for a last_hidden_state row of 128 per token).
 */
function innerDims(model: ServingModel, name: string, size: number, isSeq: boolean): number[] {
  const dims = model.graph.outputs.find((o) => o.name === name)?.dims ?? [];
  const rest = dims.slice(isSeq ? 2 : 1);
  if (rest.length > 0 && rest.every((d) => typeof d === 'number' && d >= 0) && (rest as number[]).reduce((a, b) => a * b, 1) === size) return rest as number[];
  return isSeq && size === 1 && rest.length === 0 ? [] : [size];
}
