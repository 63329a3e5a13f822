/** The second thread of walk() (src/disk/walker.ts): walks the subtrees the caller hands it. */
import { workerData } from 'node:worker_threads';
import { serveWorker, type WorkerInit } from './walker.js';

serveWorker(workerData as WorkerInit);
