// Entry of a tokenization worker (piscina). Node 20 does not carry `--import tsx` into worker threads,
// so the worker registers tsx itself before loading the TypeScript module.
import { register } from 'tsx/esm/api';

register();
const mod = await import('./tokenize-worker.ts');
export default mod.default;
