/**
 * A slow daemon for e2e tests: a unix socket proxy (node:net, in this process) in front of a real daemon's socket that
 * holds back every chunk of every answer for `delayMs` (1 s by default), in order per connection. Requests go through
 * at once; only what the daemon sends back is late, so a client sees a daemon that answers everything, slowly.
 *
 *   const proxy = await startSlowProxy('/var/run/docker.sock')
 *   t.teardown(() => proxy.close())
 *   startExporter([`--docker-endpoint=unix://${proxy.path}`])
 *
 * Each chunk is sent `delayMs` after it arrived from the daemon (not after the previous one was sent): a long answer
 * read in many chunks is late by `delayMs`, not by `delayMs` per chunk. The end of an answer (the daemon closing its
 * side) is held back the same way, so it never overtakes the data before it.
 */
import fs from 'node:fs';
import net from 'node:net';
import { socketPath } from './socket-path.js';

export interface SlowProxyOptions {
  /** How long each chunk of an answer is held back (default 1000 ms). */
  delayMs?: number;
  /** Where to listen (default: a fresh `socketPath('slow')`). */
  path?: string;
}

export interface SlowProxy {
  /** The proxy's socket: pass it as `unix://<path>`. */
  readonly path: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Chunks of answers sent back to clients so far (each one held back `delayMs`). */
  readonly delayedChunks: number;
  /** Stops listening, drops every connection and pending chunk, removes the socket file. Idempotent. */
  close(): Promise<void>;
}

/** One connection's answer queue: chunks (or the end, `null`) with the time each may be sent. */
interface Pending {
  at: number;
  chunk: Buffer | null;
}

export async function startSlowProxy(upstreamPath: string, opts: SlowProxyOptions = {}): Promise<SlowProxy> {
  const delayMs = opts.delayMs ?? 1000;
  const path = opts.path ?? socketPath('slow');
  fs.rmSync(path, { force: true });
  const live = new Set<{ client: net.Socket; upstream: net.Socket; timer: NodeJS.Timeout | undefined }>();
  let connections = 0;
  let delayedChunks = 0;

  // Half-open on both sides: a client that ends its request still gets the answer, and the daemon's end is passed on
  // only after the data before it.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    connections++;
    const upstream = net.createConnection({ path: upstreamPath, allowHalfOpen: true });
    const conn: { client: net.Socket; upstream: net.Socket; timer: NodeJS.Timeout | undefined } = { client, upstream, timer: undefined };
    live.add(conn);
    const queue: Pending[] = [];

    const drop = (): void => {
      if (conn.timer !== undefined) clearTimeout(conn.timer);
      conn.timer = undefined;
      queue.length = 0;
      client.destroy();
      upstream.destroy();
      live.delete(conn);
    };
    // Sends whatever is due, in arrival order, then sleeps until the next chunk is.
    const drain = (): void => {
      conn.timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && (queue[0]?.at ?? Infinity) <= now) {
        const next = queue.shift();
        if (next === undefined) break;
        if (next.chunk === null) {
          client.end();
          return;
        }
        delayedChunks++;
        client.write(next.chunk);
      }
      const head = queue[0];
      if (head !== undefined) conn.timer = setTimeout(drain, Math.max(0, head.at - performance.now()));
    };
    const hold = (chunk: Buffer | null): void => {
      queue.push({ at: performance.now() + delayMs, chunk });
      if (conn.timer === undefined) conn.timer = setTimeout(drain, delayMs);
    };

    upstream.on('data', (chunk: Buffer) => hold(chunk));
    upstream.on('end', () => hold(null));
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    client.on('end', () => upstream.end());
    // Either side failing or going away takes the other with it (and whatever was still held back).
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });

  let closing: Promise<void> | undefined;
  return {
    path,
    get connections() {
      return connections;
    },
    get delayedChunks() {
      return delayedChunks;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const c of [...live]) {
          if (c.timer !== undefined) clearTimeout(c.timer);
          c.client.destroy();
          c.upstream.destroy();
        }
        live.clear();
        server.close(() => {
          fs.rmSync(path, { force: true });
          resolve();
        });
      });
      return closing;
    },
  };
}
