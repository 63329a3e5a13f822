/** The thread of ThreadReadAhead (src/gather/read-ahead.ts): reads each requested file, answers in request order. */
import { parentPort } from 'node:worker_threads';
import { errnoCode } from '../guards.js';
import { FileReader } from '../host/file-reader.js';
import { errorMessage } from '../errors.js';
import { parseCgroupProcs } from '../proc/cgroup-procs.js';
import { countFileDescriptors } from '../host/process-files.js';
import type { FdOutcome, ReadAheadReply, ReadFailure, ReadOutcome } from './read-ahead.js';

const reader = new FileReader();

const failure = (err: unknown): ReadFailure => ({ code: errnoCode(err), message: errorMessage(err) });

function readOne(file: string): ReadOutcome {
  try {
    return reader.read(file) ?? null;
  } catch (err) {
    return failure(err);
  }
}

function countFds(procRoot: string, pid: number): FdOutcome {
  try {
    return countFileDescriptors(procRoot, pid) ?? null;
  } catch (err) {
    return failure(err);
  }
}

parentPort?.on('message', (msg: unknown) => {
  if (typeof msg !== 'object' || msg === null || !('id' in msg) || !('files' in msg) || !('procRoot' in msg)) return;
  const { id, files, procRoot } = msg;
  if (typeof id !== 'number' || !Array.isArray(files) || typeof procRoot !== 'string') return;
  const fds = new Map<number, FdOutcome>();
  const outcomes = files.map((f: unknown): ReadOutcome => {
    if (typeof f !== 'string') return { code: undefined, message: 'not a path' };
    const outcome = readOne(f);
    if (typeof outcome === 'string' && f.endsWith('/cgroup.procs')) {
      try {
        for (const pid of parseCgroupProcs(outcome, f)) if (!fds.has(pid)) fds.set(pid, countFds(procRoot, pid));
      } catch {
        // unparsable: the gather's thread parses it again and reports it
      }
    }
    return outcome;
  });
  const reply: ReadAheadReply = { id, outcomes, fds: [...fds] };
  parentPort?.postMessage(reply);
});
