/** The second thread of walk() (src/disk/walker.ts): walks the subtrees the caller hands it (walk-threads.ts). */
import { workerData } from 'node:worker_threads';
import { describe, isWorkerInit, serveWorker } from './walk-threads.js';

if (!isWorkerInit(workerData)) throw new Error(`disk walk worker: workerData is not a valid WorkerInit: ${describe(workerData)}`);
serveWorker(workerData);
