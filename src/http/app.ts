/**
 * The HTTP layer: routes only. It asks the ScrapeService for expositions and never reads a host file.
 * /healthz answers from the event loop and never waits for a gather; /readyz is ready once a gather succeeded (the first
 * gather waits for every configured runtime's first container list, within --runtime-startup-grace). Every answer to
 * a scrape says how old its data is in X-Podvisor-Result-Age (seconds).
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DeadlineError, PodvisorError, errorMessage } from '../errors.js';
import type { Exposition, ScrapeRequest, ScrapeService } from '../scrape/service.js';
import type { Logger } from '../log.js';
import type { Guard } from './guard.js';
import { acceptsGzip, chooseFormat, scrapeBudget, scraperKey } from './negotiate.js';

/** TLS and access control; absent: plain HTTP, open. */
export interface AppSecurity {
  guard: Guard;
  /** http_server_config.headers of the web config in force, set on every answer (401s included). */
  headers: () => Readonly<Record<string, string>>;
  /** HTTPS with these options (certificates are swapped in place later with setSecureContext). */
  https?: https.ServerOptions;
}

export interface AppOptions {
  service: ScrapeService;
  log: Logger;
  defaultScrapeTimeoutMs: number;
  scrapeTimeoutOffsetMs: number;
  security?: AppSecurity;
  /** Tests shorten the connection limits; production uses CONNECTION_LIMITS. */
  limits?: Partial<ConnectionLimits>;
}

/**
 * Limits on every connection, so slow or idle clients cannot hold the exporter: a request head must be complete 10 s
 * after its first byte (a 408 then; checked every 2 s) and the whole request within 30 s; a head over 16 KiB is a 431;
 * a TLS handshake has 10 s; a connection that sends no request at all is closed after 15 s; at most 8,192 connections
 * at once (each further one is closed at once); an idle keep-alive connection is closed after 65 s (above Prometheus'
 * idle timeout, so its reused connections are not cut under it).
 */
export const CONNECTION_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  checkIntervalMs: 2_000,
  maxHeaderSize: 16 * 1024,
  keepAliveTimeoutMs: 65_000,
  maxConnections: 8192,
  /** A connection (with TLS: after its handshake) whose first request head has not arrived after this long is closed. */
  silentTimeoutMs: 15_000,
} as const;
export type ConnectionLimits = { readonly [K in keyof typeof CONNECTION_LIMITS]: number };

const LANDING = `<html><head><title>podvisor</title></head><body><h1>podvisor</h1>
<p>A cAdvisor-compatible container metrics exporter.</p>
<ul><li><a href="metrics">/metrics</a></li><li><a href="metrics/cadvisor">/metrics/cadvisor</a> (same content, the kubelet's path)</li>
<li><a href="metrics/resource">/metrics/resource</a> (the kubelet's resource metrics, for metrics-server)</li>
<li><a href="healthz">/healthz</a></li><li><a href="readyz">/readyz</a></li></ul></body></html>
`;

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const L: ConnectionLimits = { ...CONNECTION_LIMITS, ...opts.limits };
  const serverOptions = {
    headersTimeout: L.headersTimeoutMs,
    requestTimeout: L.requestTimeoutMs,
    connectionsCheckingInterval: L.checkIntervalMs,
    maxHeaderSize: L.maxHeaderSize,
  };
  const tlsOptions = opts.security?.https;
  // One server type for fastify either way; the limits are set here, as fastify sets none on a server it did not make.
  const app = Fastify({
    logger: false,
    serverFactory: (handler) => {
      const server = tlsOptions === undefined ? http.createServer(serverOptions, handler) : https.createServer({ ...serverOptions, ...tlsOptions }, handler);
      server.keepAliveTimeout = L.keepAliveTimeoutMs;
      return server;
    },
  });
  app.server.maxConnections = L.maxConnections;
  // A connection that never completes a request head is not covered by the head timeout (Node counts it from the
  // first byte of a request): close it unless a request arrives in time. With TLS the clock starts after the
  // handshake (which has its own timeout); a socket's 'data' is no signal here, as the HTTP parser consumes the stream.
  const silent = new WeakMap<object, NodeJS.Timeout>();
  const watch = (socket: net.Socket): void => {
    const timer = setTimeout(() => socket.destroy(), L.silentTimeoutMs);
    timer.unref();
    silent.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  };
  app.server.on(tlsOptions === undefined ? 'connection' : 'secureConnection', watch);
  app.server.on('request', (req: http.IncomingMessage) => {
    const timer = silent.get(req.socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    silent.delete(req.socket);
  });

  const security = opts.security;
  if (security !== undefined) {
    app.addHook('onRequest', async (req, reply) => {
      reply.headers(security.headers());
      const verdict = await security.guard.check({
        method: req.method,
        url: req.url,
        ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
        socket: req.raw.socket,
      });
      if (verdict.status !== 200) {
        return reply.code(verdict.status).headers(verdict.headers).type('text/plain; charset=utf-8').send(verdict.body);
      }
      return undefined;
    });
  }

  /**
   * A scrape of one of the exposition routes: its deadline from the scraper's timeout header, the answer `answer`
   * gets from the service for that budget, or the error as text (a 503 for a missed deadline).
   */
  const scrape =
    (vary: string, answer: (req: FastifyRequest, budget: { ms: number; text: string }, timeoutHeader: string | undefined) => Promise<Exposition>) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const timeoutHeader = header(req, 'x-prometheus-scrape-timeout-seconds');
      const budget = scrapeBudget(timeoutHeader, opts.defaultScrapeTimeoutMs, opts.scrapeTimeoutOffsetMs);
      reply.header('vary', vary).header('cache-control', 'no-store');
      try {
        const e = await answer(req, budget, timeoutHeader);
        reply.header('content-type', e.contentType).header('x-podvisor-result-age', e.ageSeconds.toFixed(3));
        if (e.gzipped) reply.header('content-encoding', 'gzip');
        return reply.send(e.body);
      } catch (err) {
        reply.header('content-type', 'text/plain; charset=utf-8');
        if (err instanceof DeadlineError) opts.log.warn('scrape deadline exceeded', { budget: budget.text, reason: err.message });
        return reply.code(err instanceof PodvisorError ? err.statusCode : 500).send(`podvisor: ${errorMessage(err)}\n`);
      }
    };
  const metrics = scrape('Accept, Accept-Encoding', (req, budget, timeoutHeader) => {
    const request: ScrapeRequest = {
      format: chooseFormat(header(req, 'accept')),
      gzip: acceptsGzip(header(req, 'accept-encoding')),
      budgetMs: budget.ms,
      budgetText: budget.text,
      scraper: scraperKey(req.ip, header(req, 'user-agent'), req.url, timeoutHeader),
    };
    return opts.service.exposition(request);
  });
  // Text 0.0.4 only, as the kubelet serves it.
  const resource = scrape('Accept-Encoding', (req, budget) =>
    opts.service.resourceExposition({ gzip: acceptsGzip(header(req, 'accept-encoding')), budgetMs: budget.ms, budgetText: budget.text }),
  );

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(LANDING));
  app.get('/metrics/resource', resource);
  app.get('/metrics', metrics);
  app.get('/metrics/cadvisor', metrics);
  app.get('/healthz', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('ok\n'));
  app.get('/readyz', async (_req, reply) => {
    const state = opts.service.state;
    return reply.code(state.ready ? 200 : 503).send(state);
  });
  return app;
}
