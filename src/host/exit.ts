/**
 * Ending the process when a thread may be stuck in a native call. A call into a driver that never returns (a hung NVML
 * call on one of libuv's threads) makes `process.exit()` hang for ever: Node joins its threads on the way out. Checked
 * here with koffi 3.3.4 on Node 20, for a call on libuv's pool, on a worker thread, and after `worker.terminate()`.
 * `_exit(2)` ends the process at once with the code, joining nothing. Log lines are out already: Node writes stderr
 * synchronously to files, pipes and terminals on Linux.
 */
let libcExit: ((code: number) => void) | undefined;
let stuck = false;

/** A native call on this thread's side of the process never returned: a normal exit would wait for it for ever. */
export function noteStuckNativeCall(): void {
  stuck = true;
}

/** Whether noteStuckNativeCall was called (in this thread's copy of the module). */
export function nativeCallStuck(): boolean {
  return stuck;
}

/**
 * Loads libc's `_exit` ahead of need (at startup, so shutdown itself loads nothing). koffi is imported here, not at
 * the top: only a process that loads NVML pays for it.
 */
export async function prepareImmediateExit(): Promise<void> {
  if (libcExit !== undefined) return;
  const { default: koffi } = await import('koffi');
  libcExit = koffi.load('libc.so.6').func('void _exit(int code)');
}

/** Ends the process now with `code`: `_exit(2)` when prepared, else `process.exit`. */
export function exitImmediately(code: number): never {
  libcExit?.(code);
  process.exit(code);
}
