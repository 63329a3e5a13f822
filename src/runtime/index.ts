/**
 * Builds the runtime factories from configuration, in cAdvisor's order (raw is what is left): Docker, containerd,
 * CRI-O. Each registers in the background and retries; none can stop the exporter or a gather.
 */
import type { Logger } from '../log.js';
import { ContainerdClient } from './containerd/client.js';
import { CrioClient } from './crio/client.js';
import { DockerClient } from './docker/client.js';
import { RuntimeFactory } from './factory.js';
import type { ExtraLabelOptions } from './resolve.js';

/** Plain data (with `--gather-in-worker` it crosses to the gather worker). An empty endpoint turns that runtime off. */
export interface RuntimeConfig {
  dockerEndpoint: string;
  containerdAddress: string;
  containerdNamespaces: readonly string[];
  crioEndpoint: string;
  timeoutMs: number;
  /** --runtime-startup-grace: how long the first gather waits for a runtime that gives no answer. */
  startupGraceMs: number;
  /** --label-hold: how long a cgroup whose container is being looked up is left out of gathers. */
  labelHoldMs: number;
  extraLabels: ExtraLabelOptions;
}

export function createRuntimes(cfg: RuntimeConfig, log: Logger): RuntimeFactory[] {
  const opts = { callTimeoutMs: cfg.timeoutMs, log };
  const factories: RuntimeFactory[] = [];
  if (cfg.dockerEndpoint !== '') factories.push(new RuntimeFactory(new DockerClient({ endpoint: cfg.dockerEndpoint, timeoutMs: cfg.timeoutMs }), opts));
  if (cfg.containerdAddress !== '') {
    factories.push(
      new RuntimeFactory(new ContainerdClient({ address: cfg.containerdAddress, namespaces: [...cfg.containerdNamespaces], timeoutMs: cfg.timeoutMs }), opts),
    );
  }
  if (cfg.crioEndpoint !== '') factories.push(new RuntimeFactory(new CrioClient({ endpoint: cfg.crioEndpoint, timeoutMs: cfg.timeoutMs }), opts));
  for (const f of factories) f.start();
  return factories;
}
