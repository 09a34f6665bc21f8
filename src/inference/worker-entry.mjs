// Entry of an inference worker thread. Node 20 does not carry `--import tsx` loader hooks into worker
// threads, so the worker registers tsx itself before loading the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
