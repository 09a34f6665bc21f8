/**
 * Writes the gateway's answer feedback as SQuAD 2.0 JSON (stdout, or --out FILE), read straight from the store the
 * config names (the journal under feedback.dir, or PostgreSQL): the same file GET /v1/feedback/export gives, for a
 * training run (scripts/train: FEEDBACK_FILE=...). `npm run feedback:export -- --out feedback.json`
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.ts';
import { feedbackStoreFor } from '../src/plugins/app/feedback.ts';
import { toSquad } from '../src/feedback/types.ts';

const { values } = parseArgs({ options: { out: { type: 'string' } } });
const store = feedbackStoreFor(loadConfig());
await store.open();
try {
  const records = await store.all();
  const squad = toSquad(records);
  const json = `${JSON.stringify(squad, null, 2)}\n`;
  if (values.out) writeFileSync(values.out, json);
  else process.stdout.write(json);
  const qas = squad.data[0].paragraphs.reduce((n, p) => n + p.qas.length, 0);
  process.stderr.write(`feedback:export: ${records.length} records, ${qas} questions over ${squad.data[0].paragraphs.length} contexts (${store.kind})\n`);
} finally {
  await store.close();
}
