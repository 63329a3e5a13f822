/**
 * podvisor's entry point: parse flags, check the host, start the gather engine and the HTTP server.
 * Every startup failure is one readable line on stderr and a non-zero exit.
 */
import { helpText, parseArgs, type Config } from './config.js';
import { ConfigError, StartupError, errorMessage } from './errors.js';
import { errnoCode } from './guards.js';
import { checkLayoutReadable, loadLayout } from './cgroup/layout.js';
import type { AcceleratorOptions, GatherOptions } from './gather/setup.js';
import { findNvmlLibrary } from './gpu/nvml/find.js';
import { exitImmediately, nativeCallStuck, prepareImmediateExit } from './host/exit.js';
import { LocalEngine, type GatherEngine } from './scrape/engine.js';
import { WorkerEngine } from './scrape/worker-engine.js';
import { buildApp } from './http/app.js';
import { setupSecurity } from './http/security.js';
import { newSecurityStats } from './model/scrape.js';
import { createLogger, type Logger } from './log.js';
import { ScrapeService } from './scrape/service.js';
import { VERSION } from './version.js';

function listenError(err: unknown, cfg: Config): string {
  const where = `${cfg.listenHost}:${cfg.listenPort}`;
  switch (errnoCode(err)) {
    case 'EADDRINUSE':
      return `cannot listen on ${where}: the address is already in use (another exporter on this port? choose one with --listen-address)`;
    case 'EACCES':
      return `cannot listen on ${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${where}: no such address on this machine`;
    default:
      return `cannot listen on ${where}: ${errorMessage(err)}`;
  }
}

/**
 * The accelerator kind's sources, or undefined (the kind then is off): NVML found under --rootfs or given by
 * --nvml-library, and loadable. Not found is one info line; a library given by flag that does not load is a startup error.
 */
async function acceleratorOptions(cfg: Config, log: Logger): Promise<AcceleratorOptions | undefined> {
  if (!cfg.kinds.includes('accelerator')) return undefined;
  const a = cfg.accelerator;
  const given = a.nvmlLibrary !== '';
  const path = given ? a.nvmlLibrary : findNvmlLibrary(cfg.rootfs);
  if (path === undefined) {
    log.info(
      'accelerator metrics off: no NVML library (libnvidia-ml.so.1) in this container or under --rootfs; on GPU nodes see deploy/README.md or set --nvml-library',
      {
        rootfs: cfg.rootfs,
      },
    );
    return undefined;
  }
  try {
    // koffi and the binding are loaded only here, on a node that has the library.
    const { loadNvml } = await import('./gpu/nvml/library.js');
    loadNvml(path, { timeoutMs: a.timeoutMs });
  } catch (err) {
    if (given) throw new StartupError(`--nvml-library: ${errorMessage(err)}`, { cause: err });
    log.warn('accelerator metrics off: the NVML library found could not be loaded', { library: path, error: errorMessage(err) });
    return undefined;
  }
  // A hung driver call would hold process.exit() for ever: exits go through _exit from now on (host/exit.ts).
  await prepareImmediateExit();
  log.info('accelerator metrics on', { library: path, podResources: a.podResourcesSocket === '' ? 'off' : a.podResourcesSocket });
  return { ...a, nvmlLibrary: path };
}

async function run(cfg: Config, log: Logger): Promise<void> {
  // TLS, the web config and the API server client first: a mistake there is a startup error before anything runs.
  const securityStats = newSecurityStats();
  const security = setupSecurity(cfg.security, log, securityStats);
  const layout = loadLayout(cfg.rootfs);
  checkLayoutReadable(layout);
  const accelerator = await acceleratorOptions(cfg, log);
  log.info('cgroup hierarchy found', {
    mode: layout.mode,
    v1: [...new Set(layout.v1.values())].length,
    v2: layout.v2 ?? 'none',
  });
  const kinds = accelerator === undefined ? cfg.kinds.filter((k) => k !== 'accelerator') : cfg.kinds;
  log.info('metric kinds', { kinds: kinds.join(','), runtimeContainersOnly: cfg.runtimeContainersOnly });
  // A thread stuck in the NVML driver makes process.exit() wait for ever: then the exit is _exit(2). On this thread
  // the gather's close says so; a gather worker's stuck thread cannot be seen from here, so with one, always.
  const mayBeStuck = (): boolean => accelerator !== undefined && (cfg.gatherInWorker || nativeCallStuck());
  const exit = (code: number): never => (mayBeStuck() ? exitImmediately(code) : process.exit(code));

  const engineOpts: GatherOptions = {
    layout,
    rootfs: cfg.rootfs,
    allowPrefixes: cfg.rawCgroupPrefixAllowlist,
    runtimeContainersOnly: cfg.runtimeContainersOnly,
    kinds,
    machineInfoIntervalMs: cfg.machineInfoIntervalMs,
    gatherThreads: cfg.gatherThreads,
    runtimes: cfg.runtimes,
    ...(cfg.disk === undefined ? {} : { disk: cfg.disk }),
    ...(accelerator === undefined ? {} : { accelerator }),
  };
  // On the HTTP thread the gather reads in slices of at most 10 ms, then lets queued requests (/healthz) through.
  const engine: GatherEngine = cfg.gatherInWorker
    ? new WorkerEngine(engineOpts, log, cfg.logLevel, cfg.gatherTimeoutMs)
    : new LocalEngine(engineOpts, log, { sliceMs: 10 });
  const service = new ScrapeService(engine, log, {
    minGatherIntervalMs: cfg.minGatherIntervalMs,
    maxResultAgeMs: cfg.maxResultAgeMs,
    gatherAhead: cfg.gatherAhead,
    ...(security.app === undefined ? {} : { securityStats }),
  });
  const app = buildApp({
    service,
    log,
    defaultScrapeTimeoutMs: cfg.defaultScrapeTimeoutMs,
    scrapeTimeoutOffsetMs: cfg.scrapeTimeoutOffsetMs,
    ...(security.app === undefined ? {} : { security: security.app }),
  });
  security.attach(app.server);

  try {
    await app.listen({ host: cfg.listenHost, port: cfg.listenPort });
  } catch (err) {
    security.close();
    await service.close();
    throw new StartupError(listenError(err, cfg), { cause: err });
  }
  log.info('podvisor listening', {
    version: VERSION,
    address: `${cfg.listenHost}:${cfg.listenPort}`,
    scheme: security.app?.https === undefined ? 'http' : 'https',
    ...security.summary,
  });
  void service.warmUp().then(() => {
    const s = service.state;
    if (s.ready) log.info('first gather done', { cgroups: s.lastContainers, seconds: s.lastDurationSeconds });
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    // Past 10 s something is stuck (perhaps in a driver): never a normal exit then.
    const force = setTimeout(() => (accelerator === undefined ? process.exit(1) : exitImmediately(1)), 10_000);
    force.unref();
    app
      .close()
      .then(() => {
        security.close();
        return service.close();
      })
      .then(() => exit(0))
      .catch((err: unknown) => {
        log.error('shutdown failed', { error: errorMessage(err) });
        exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function main(): void {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`podvisor: ${errorMessage(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
  if (parsed.kind === 'help') {
    process.stdout.write(helpText());
    return;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`podvisor ${VERSION}\n`);
    return;
  }
  const cfg = parsed.config;
  const log = createLogger(cfg.logLevel);
  run(cfg, log).catch((err: unknown) => {
    process.stderr.write(`podvisor: ${errorMessage(err)}\n`);
    process.exit(1);
  });
}

main();
