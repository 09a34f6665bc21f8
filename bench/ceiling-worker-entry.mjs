// Worker entry: Node 20 does not carry tsx's loader into worker threads.
import { register } from 'tsx/esm/api';

register();
await import('./ceiling-worker.ts');
