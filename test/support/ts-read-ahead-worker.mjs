// Worker threads do not inherit tsx's loader on Node 20, so tests start the read-ahead worker through this shim:
// it registers tsx inside the worker, then loads the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../../src/gather/read-ahead-worker.ts', import.meta.url).href);
