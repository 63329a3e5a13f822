/**
 * The gather worker thread (`--gather-in-worker`): owns a LocalEngine and answers `{ type: 'gather', id }` with the
 * encoded families. File reads are synchronous here on purpose (fastest, measured); they never block the HTTP thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../log.js';
import { errorMessage } from '../errors.js';
import { LocalEngine } from './engine.js';
import { isWorkerInit, type WorkerReply } from './worker-protocol.js';

if (parentPort === null) throw new Error('worker.ts must run as a worker thread');
const port = parentPort;
if (!isWorkerInit(workerData)) throw new Error('gather worker started without valid options');
const init = workerData;
const engine = new LocalEngine(init.engine, createLogger(init.logLevel));

port.on('message', (msg: unknown) => {
  if (typeof msg !== 'object' || msg === null || !('type' in msg) || msg.type !== 'gather' || !('id' in msg) || typeof msg.id !== 'number') return;
  const id = msg.id;
  engine.gather().then(
    (result) => {
      // The sample bytes are transferred, not copied (encodeFamilies gives each group a buffer of its own).
      const transfer = new Set<ArrayBuffer>();
      for (const g of [result.body, result.resource]) if (g.bytes.buffer instanceof ArrayBuffer) transfer.add(g.bytes.buffer);
      port.postMessage({ type: 'result', id, result } satisfies WorkerReply, [...transfer]);
    },
    (err: unknown) => port.postMessage({ type: 'error', id, message: errorMessage(err) } satisfies WorkerReply),
  );
});
