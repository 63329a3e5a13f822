/**
 * What the benchmark must undo, whatever happens: exporters it started, containers it created. Steps run once, last
 * registered first, on normal exit, on failure and on Ctrl-C / SIGTERM (a second Ctrl-C stops waiting for them).
 */
import { errorMessage } from './exec.js';

type Step = { name: string; fn: () => Promise<void> | void };

const steps: Step[] = [];
let running: Promise<void> | undefined;

/** Registers a cleanup step; returns a function that unregisters it (when the thing was undone normally). */
export function onCleanup(name: string, fn: () => Promise<void> | void): () => void {
  const step: Step = { name, fn };
  steps.push(step);
  return () => {
    const i = steps.indexOf(step);
    if (i >= 0) steps.splice(i, 1);
  };
}

/** Runs every registered step (last first), each once; a failing step is reported and the rest still run. */
export function runCleanup(log: (line: string) => void): Promise<void> {
  running ??= (async () => {
    while (steps.length > 0) {
      const step = steps.pop() as Step;
      try {
        await step.fn();
      } catch (err) {
        log(`cleanup: ${step.name} failed: ${errorMessage(err)}`);
      }
    }
  })();
  return running;
}

let signalled = false;

/** True once SIGINT/SIGTERM arrived: failures after that are the interruption's, not worth reporting. */
export const interrupted = (): boolean => signalled;

/** On SIGINT/SIGTERM: clean up, then exit 130/143. A second signal exits at once. */
export function installSignalHandlers(log: (line: string) => void): void {
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(sig, () => {
      if (signalled) {
        log(`${sig} again: exiting without waiting for the cleanup`);
        process.exit(code);
      }
      signalled = true;
      log(`${sig}: cleaning up (again to exit at once)`);
      void runCleanup(log).finally(() => process.exit(code));
    });
  }
}
