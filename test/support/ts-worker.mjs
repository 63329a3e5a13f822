// Worker threads do not inherit tsx's loader on Node 20, so tests start the gather worker through this shim:
// it registers tsx inside the worker, then loads the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../../src/scrape/worker.ts', import.meta.url).href);
