// Check an exported model with ONNX Runtime (what the gateway runs): input/output names, parity with the PyTorch
// reference outputs, and batch invariance (a row alone vs the same row inside a padded batch of mixed lengths).
// usage: node validate.mjs path/to/model.onnx path/to/reference.json [--invariance-only]  -> prints JSON, exits 1 on failure
// --invariance-only (int8 graphs): the PyTorch parity figure is reported but only batch invariance must hold
import ort from 'onnxruntime-node'
import fs from 'node:fs'

const [modelPath, refPath, flag] = process.argv.slice(2)
const ref = JSON.parse(fs.readFileSync(refPath, 'utf8'))
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 })

function feeds (rows) {
  const t = Math.max(...rows.map((r) => r.ids.length))
  const ids = new BigInt64Array(rows.length * t)
  const att = new BigInt64Array(rows.length * t)
  const tt = new BigInt64Array(rows.length * t)
  rows.forEach((r, i) => r.ids.forEach((id, j) => { ids[i * t + j] = BigInt(id); att[i * t + j] = 1n; tt[i * t + j] = BigInt(r.tt[j] ?? 0) }))
  const dims = [rows.length, t]
  return { input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', att, dims), token_type_ids: new ort.Tensor('int64', tt, dims) }
}

const perTokenNames = new Set(['start_logits', 'end_logits', 'last_hidden_state'])
function rowOutputs (res, i, n) {
  return session.outputNames.map((name) => {
    const o = res[name]
    const per = o.dims.slice(1).reduce((a, b) => a * b, 1)
    const flat = Array.from(o.data.slice(i * per, (i + 1) * per))
    return perTokenNames.has(name) ? flat.slice(0, n * (o.dims.length === 3 ? o.dims[2] : 1)) : flat
  })
}
const maxDiff = (a, b) => a.reduce((m, x, k) => m.concat(x.map((v, j) => Math.abs(v - b[k][j]))), []).reduce((m, v) => Math.max(m, v), 0)

let parity = 0
let invariance = 0
const alone = []
for (const r of ref) {
  const res = await session.run(feeds([r]))
  const o = rowOutputs(res, 0, r.ids.length)
  alone.push(o)
  const want = Array.isArray(r.out[0]) && session.outputNames.length > 1 ? r.out.map((x) => x.flat()) : [r.out.flat()]
  parity = Math.max(parity, maxDiff(o, want))
}
// mixed-length padded batch, in reverse order
const order = ref.map((_, i) => ref.length - 1 - i)
const res = await session.run(feeds(order.map((i) => ref[i])))
order.forEach((i, k) => { invariance = Math.max(invariance, maxDiff(rowOutputs(res, k, ref[i].ids.length), alone[i])) })
const report = { model: modelPath, inputs: session.inputNames, outputs: session.outputNames, rows: ref.length, lengths: ref.map((r) => r.ids.length), parityMaxAbsDiff: parity, batchInvarianceMaxAbsDiff: invariance }
console.log(JSON.stringify(report))
if (!((flag === '--invariance-only' || parity < 1e-4) && invariance < 1e-4)) process.exit(1)
