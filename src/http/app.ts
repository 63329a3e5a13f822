/**
 * The HTTP layer: routes only. It asks the ScrapeService for expositions and never reads a host file.
 * /healthz answers from the event loop and never waits for a gather; /readyz is ready once a gather succeeded (the first
 * gather waits for every configured runtime's first container list, within --runtime-startup-grace). Every answer to
 * a scrape says how old its data is in X-Podvisor-Result-Age (seconds).
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { DeadlineError, PodvisorError, errorMessage } from '../errors.js';
import type { ScrapeRequest, ScrapeService } from '../scrape/service.js';
import type { Logger } from '../log.js';
import { acceptsGzip, chooseFormat, scrapeBudget, scraperKey } from './negotiate.js';

export interface AppOptions {
  service: ScrapeService;
  log: Logger;
  defaultScrapeTimeoutMs: number;
  scrapeTimeoutOffsetMs: number;
}

const LANDING = `<html><head><title>podvisor</title></head><body><h1>podvisor</h1>
<p>A cAdvisor-compatible container metrics exporter.</p>
<ul><li><a href="metrics">/metrics</a></li><li><a href="metrics/cadvisor">/metrics/cadvisor</a> (same content, the kubelet's path)</li>
<li><a href="healthz">/healthz</a></li><li><a href="readyz">/readyz</a></li></ul></body></html>
`;

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function buildApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({ logger: false, keepAliveTimeout: 65_000 });

  const metrics = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const timeoutHeader = header(req, 'x-prometheus-scrape-timeout-seconds');
    const budget = scrapeBudget(timeoutHeader, opts.defaultScrapeTimeoutMs, opts.scrapeTimeoutOffsetMs);
    const request: ScrapeRequest = {
      format: chooseFormat(header(req, 'accept')),
      gzip: acceptsGzip(header(req, 'accept-encoding')),
      budgetMs: budget.ms,
      budgetText: budget.text,
      scraper: scraperKey(req.ip, header(req, 'user-agent'), req.url, timeoutHeader),
    };
    reply.header('vary', 'Accept, Accept-Encoding').header('cache-control', 'no-store');
    try {
      const e = await opts.service.exposition(request);
      reply.header('content-type', e.contentType).header('x-podvisor-result-age', e.ageSeconds.toFixed(3));
      if (e.gzipped) reply.header('content-encoding', 'gzip');
      return reply.send(e.body);
    } catch (err) {
      reply.header('content-type', 'text/plain; charset=utf-8');
      if (err instanceof DeadlineError) opts.log.warn('scrape deadline exceeded', { budget: budget.text, reason: err.message });
      return reply.code(err instanceof PodvisorError ? err.statusCode : 500).send(`podvisor: ${errorMessage(err)}\n`);
    }
  };

  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(LANDING));
  app.get('/metrics', metrics);
  app.get('/metrics/cadvisor', metrics);
  app.get('/healthz', async (_req, reply) => reply.type('text/plain; charset=utf-8').send('ok\n'));
  app.get('/readyz', async (_req, reply) => {
    const state = opts.service.state;
    return reply.code(state.ready ? 200 : 503).send(state);
  });
  return app;
}
