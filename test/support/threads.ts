/**
 * The `timeoutMs` for a real worker thread started by a test (the read-ahead thread through the tsx shim): its first
 * start loads TypeScript through tsx, which on a loaded machine took longer than the 5 s production default ("read-ahead
 * thread did not answer within 5000 ms"). A test about what the thread answers is not about how fast it starts; only a
 * test of the timeout itself sets a short one (with a worker that never answers).
 */
export const THREAD_TIMEOUT_MS = 60_000;
