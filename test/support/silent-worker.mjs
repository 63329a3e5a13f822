// A worker that takes messages and never answers: ThreadReadAhead's timeout path.
import { parentPort } from 'node:worker_threads';

parentPort.on('message', () => {});
