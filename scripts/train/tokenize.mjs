// Tokenize training data with the exact Rust tokenizer the gateway serves with (@anush008/tokenizers on tokenizer.json).
// usage: node tokenize.mjs tokenizer.json in.jsonl out.jsonl maxLen
// in rows: { a, b?, ans?: [charStart, charEnd] (in b if b is given, else in a), spans?: [[charStart, charEnd]...] (in a) }
// out rows: { ids, tt, s?, e?, lost?, offs?, seq?, tlab? } where s/e are answer token indices (0,0 = no answer / [CLS]).
import { Tokenizer } from '@anush008/tokenizers'
import fs from 'node:fs'
import readline from 'node:readline'

const [tokPath, inPath, outPath, maxLenArg] = process.argv.slice(2)
const maxLen = Number(maxLenArg ?? 256)
const single = Tokenizer.fromFile(tokPath)
single.setTruncation(maxLen)
const pair = Tokenizer.fromFile(tokPath)
pair.setTruncation(maxLen, { strategy: 'OnlySecond' })

const out = fs.createWriteStream(outPath)
const rl = readline.createInterface({ input: fs.createReadStream(inPath) })
let batch = []
let n = 0
let lost = 0

async function one (row) {
  const enc = row.b != null ? await pair.encode(row.a, row.b) : await single.encode(row.a)
  const r = { ids: enc.getIds(), tt: enc.getTypeIds() }
  if (row.spans) {
    // per-token 0/1: does the token overlap one of the marked character spans (e.g. corrupted regions)
    const offs = enc.getOffsets()
    const seq = enc.getSequenceIds()
    r.tlab = offs.map(([os, oe], i) => (seq[i] === 0 && row.spans.some(([a, b]) => os < b && oe > a) ? 1 : 0))
  }
  if (row.ans !== undefined) { r.offs = enc.getOffsets(); r.seq = enc.getSequenceIds().map((x) => x ?? -1) }
  if (row.ans) {
    const seqWanted = row.b != null ? 1 : 0
    const [cs, ce] = row.ans
    const offs = enc.getOffsets()
    const seq = enc.getSequenceIds()
    let s = -1
    let e = -1
    for (let i = 0; i < offs.length; i++) {
      if (seq[i] !== seqWanted) continue
      const [os, oe] = offs[i]
      if (s < 0 && oe > cs) s = i
      if (os < ce) e = i
    }
    if (s < 0 || e < s || offs[s][0] > cs || offs[e][1] < ce) { r.s = 0; r.e = 0; r.lost = true; lost++ } else { r.s = s; r.e = e }
  } else if (row.ans === null) { r.s = 0; r.e = 0 }
  return r
}

async function flush () {
  const res = await Promise.all(batch.map(one))
  for (const r of res) out.write(JSON.stringify(r) + '\n')
  n += batch.length
  batch = []
}

for await (const line of rl) {
  if (!line) continue
  batch.push(JSON.parse(line))
  if (batch.length >= 256) await flush()
}
await flush()
out.end()
console.error(`tokenized ${n} rows from ${inPath}${lost ? `, ${lost} answers lost to truncation` : ''}`)
