/**
 * A served model as the Open Inference Protocol sees it: its metadata (names, datatypes, shapes with -1 for
 * dynamic axes) and the raw run spec of the /v2 infer route (every float output, unpooled), which shares the
 * model's scheduler and workers with the task routes.
 */
import type { ModelRunSpec } from '../batcher.ts';
import type { LoadedGraph } from '../pool.ts';
import type { TensorInfo } from '../protocol.ts';
import { datatypeOfOnnx, metadataShape, type MetadataTensor, type ModelMetadata } from './tensors.ts';

/** The platform the protocol's specification names for an ONNX model run by ONNX Runtime. */
export const ONNX_PLATFORM = 'onnx_onnxv1';

const isDynamic = (d: number | string | undefined) => typeof d === 'string' || (typeof d === 'number' && d < 0);

/**
 * Outputs with a sequence axis ([batch, seq, …]): their second axis is the inputs' sequence axis (the same
 * symbol in an ONNX graph; any dynamic axis where the remote reports -1).
 */
export function sequenceOutputsOf(graph: Pick<LoadedGraph, 'inputs' | 'outputs'>): string[] {
  const seqAxis = graph.inputs.find((i) => i.name === 'input_ids')?.dims[1];
  return graph.outputs
    .filter((o) => o.dims.length >= 2 && isDynamic(o.dims[1]) && (typeof o.dims[1] !== 'string' || typeof seqAxis !== 'string' || o.dims[1] === seqAxis))
    .map((o) => o.name);
}

/** The outputs /v2 can return: float32 tensors (the gateway's batches carry float32 rows). */
export function servableOutputs(graph: Pick<LoadedGraph, 'outputs'>): TensorInfo[] {
  return graph.outputs.filter((o) => o.type === 'float32');
}

/** The run spec of /v2 infer: every servable output, raw (no pooling), fed as the task routes feed the model. */
export function rawRunSpec(graph: LoadedGraph, spec: ModelRunSpec): ModelRunSpec {
  const fetches = servableOutputs(graph).map((o) => o.name);
  const seq = sequenceOutputsOf(graph);
  return { ...spec, fetches, sequenceOutputs: fetches.filter((f) => seq.includes(f)), post: 'none' };
}

function tensor(t: TensorInfo, datatype = datatypeOfOnnx(t.type) ?? 'BYTES'): MetadataTensor {
  return { name: t.name, datatype, shape: metadataShape(t.dims) };
}

/** Model metadata: inputs as the graph declares them, outputs as /v2 infer returns them (FP32). */
export function modelMetadata(name: string, version: string, graph: LoadedGraph): ModelMetadata {
  return {
    name,
    versions: [version],
    platform: graph.platform ?? ONNX_PLATFORM,
    inputs: graph.inputs.map((t) => tensor(t)),
    outputs: servableOutputs(graph).map((t) => tensor(t, 'FP32')),
  };
}
