/**
 * Docker endpoints as podvisor's flags spell them (`unix:///var/run/docker.sock`, `tcp://host:2375`), turned into
 * docker-modem connection options.
 */
import type http from 'node:http';
import type Docker from 'dockerode';
import { ConfigError } from '../../errors.js';

/** Longest unix socket path the kernel accepts (`sizeof(sockaddr_un.sun_path)` - 1 on Linux). */
export const MAX_UNIX_PATH_BYTES = 107;

export type DockerEndpoint = { kind: 'unix'; socketPath: string } | { kind: 'tcp'; host: string; port: number };

/** Parses `unix:///path` or `tcp://host:port`; throws ConfigError on anything else. */
export function parseDockerEndpoint(endpoint: string): DockerEndpoint {
  if (endpoint.startsWith('unix://')) {
    const socketPath = endpoint.slice('unix://'.length);
    if (!socketPath.startsWith('/')) {
      throw new ConfigError(`docker endpoint ${endpoint}: expected an absolute socket path (unix:///var/run/docker.sock)`);
    }
    if (Buffer.byteLength(socketPath) > MAX_UNIX_PATH_BYTES) {
      throw new ConfigError(`docker endpoint ${endpoint}: socket path is longer than ${MAX_UNIX_PATH_BYTES} bytes`);
    }
    return { kind: 'unix', socketPath };
  }
  if (endpoint.startsWith('tcp://')) {
    let url: URL;
    try {
      url = new URL(`http://${endpoint.slice('tcp://'.length)}`);
    } catch {
      throw new ConfigError(`docker endpoint ${endpoint}: not a valid tcp://host:port address`);
    }
    const port = Number(url.port || '2375');
    if (url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') {
      throw new ConfigError(`docker endpoint ${endpoint}: expected tcp://host:port`);
    }
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return { kind: 'tcp', host, port };
  }
  throw new ConfigError(`docker endpoint ${endpoint}: expected unix:///path or tcp://host:port`);
}

/**
 * docker-modem options for an endpoint. Every connection field is set explicitly (undefined included) so that
 * docker-modem's DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CLIENT_TIMEOUT defaults cannot leak in.
 */
export interface ModemOptions extends Docker.DockerOptions {
  /** docker-modem passes it to http.request (missing from @types/dockerode). */
  agent?: http.Agent;
  connectionTimeout?: undefined;
  pathPrefix?: undefined;
}

export function modemOptions(ep: DockerEndpoint, agent?: http.Agent): ModemOptions {
  const common: ModemOptions = {
    agent,
    protocol: 'http',
    ca: undefined,
    cert: undefined,
    key: undefined,
    timeout: undefined,
    connectionTimeout: undefined,
    version: undefined,
    pathPrefix: undefined,
  };
  if (ep.kind === 'unix') return { ...common, socketPath: ep.socketPath, host: undefined, port: undefined };
  return { ...common, socketPath: undefined, host: ep.host, port: ep.port };
}
