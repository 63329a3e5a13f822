// A worker that dies on its first message: ThreadReadAhead's failure path.
import { parentPort } from 'node:worker_threads';

parentPort.on('message', () => {
  throw new Error('boom');
});
