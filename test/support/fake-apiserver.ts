/**
 * A fake Kubernetes API server over HTTPS (its own CA from pki.ts) that speaks TokenReview and SubjectAccessReview as
 * kubernetes/api documents them: POST, the caller's own bearer token required (401 Status otherwise), 201 Created
 * with the review echoed and `status` filled in, Go's `omitempty` respected (no `authenticated: false`, no empty
 * fields).
 *
 * - Tokens: a table token → { user, audiences, expired?, reviewError? }. Unknown and expired tokens, and tokens whose
 *   audiences miss `spec.audiences`, answer `authenticated` absent (false) with no error; `reviewError` answers
 *   `status.error`. `status.audiences` is the intersection of the token's audiences with the requested ones (or with
 *   `apiAudiences` when none were requested); `omitAudiences` leaves it out (an audience-unaware server).
 * - SARs: `rule(user, attrs)` → 'allow' | 'deny' | 'noopinion' (or 'both', out of contract).
 * - Faults, switchable at run time: 'hang' (read the request, never answer), 'status500', 'garbage' (200 and a body
 *   that is not JSON), 'close' (destroy the socket).
 * - `restart()` closes every connection and listens again on the same port.
 */
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { makeCa, serverCert, type Ca, type KeyPair } from './pki.js';
import { isRecord } from '../../src/guards.js';

export interface FakeUser {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

export interface FakeToken {
  user: FakeUser;
  /** The audiences the token was issued for; default: the API server's own (`apiAudiences`). */
  audiences?: string[];
  expired?: boolean;
  /** Answer `authenticated: false` with this `status.error`. */
  reviewError?: string;
  /** Authenticate without `status.audiences`, as an audience-unaware server would. */
  omitAudiences?: boolean;
}

export interface FakeAttrs {
  namespace?: string;
  verb?: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  name?: string;
}

export interface FakeSarUser {
  user: string;
  uid?: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export type FakeDecision = 'allow' | 'deny' | 'noopinion' | 'both';
export type FakeFault = 'hang' | 'status500' | 'garbage' | 'close';

export interface FakeApiServerOptions {
  /** Directory for the CA and server certificate; a fresh temporary one by default. */
  dir?: string;
  tokens?: Record<string, FakeToken>;
  rule?: (user: FakeSarUser, attrs: FakeAttrs) => FakeDecision;
  /** The bearer token podvisor itself must present; default `podvisor-sa-token`. */
  callerToken?: string;
  /** The audiences of the API server itself (checked when a review asks for none). */
  apiAudiences?: string[];
}

export interface FakeApiServer {
  readonly url: string;
  readonly port: number;
  readonly caFile: string;
  readonly ca: Ca;
  readonly dir: string;
  tokens: Record<string, FakeToken>;
  rule: (user: FakeSarUser, attrs: FakeAttrs) => FakeDecision;
  /** The token podvisor must send; change it to simulate rotation. */
  callerToken: string;
  fault: FakeFault | undefined;
  /**
   * Answers a review (after the caller token check) with this status and raw body instead of the documented one, when
   * it returns something: for bodies out of contract.
   */
  respond: ((kind: 'TokenReview' | 'SubjectAccessReview', spec: Record<string, unknown>) => { status: number; body: string } | undefined) | undefined;
  /** Reviews answered (201), by kind. */
  readonly counts: { tokenReviews: number; subjectAccessReviews: number; unauthorized: number; requests: number; badRequests: number };
  /** Bodies of the reviews received, in order (TokenReview spec tokens included: this is a test double). */
  readonly received: { kind: 'TokenReview' | 'SubjectAccessReview'; spec: Record<string, unknown> }[];
  /** The Authorization headers seen, in order. */
  readonly authorizations: (string | undefined)[];
  /** Review counts by kind, as `counts` has them. */
  reviews(): { tokenreview: number; subjectaccessreview: number };
  /**
   * A kubeconfig for this server: its CA by path, the caller token inline, or `tokenFile` when given (then the file
   * is what podvisor re-reads).
   */
  kubeconfig(opts?: { tokenFile?: string }): string;
  restart(): Promise<void>;
  close(): Promise<void>;
}

const ATTR_KEYS = ['namespace', 'verb', 'group', 'version', 'resource', 'subresource', 'name'] as const;
const DEFAULT_API_AUDIENCES = ['https://kubernetes.default.svc.cluster.local'];

function statusBody(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

export async function startFakeApiServer(opts: FakeApiServerOptions): Promise<FakeApiServer> {
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'podvisor-fake-apiserver-'));
  const ca = makeCa(dir, 'fake-apiserver-ca');
  const cert: KeyPair = serverCert(ca, 'fake-apiserver');
  const apiAudiences = opts.apiAudiences ?? DEFAULT_API_AUDIENCES;
  const sockets = new Set<Socket>();

  const state = {
    tokens: opts.tokens ?? {},
    rule: opts.rule ?? ((): FakeDecision => 'noopinion'),
    callerToken: opts.callerToken ?? 'podvisor-sa-token',
    fault: undefined as FakeFault | undefined,
    respond: undefined as FakeApiServer['respond'],
    counts: { tokenReviews: 0, subjectAccessReviews: 0, unauthorized: 0, requests: 0, badRequests: 0 },
    received: [] as FakeApiServer['received'],
    authorizations: [] as (string | undefined)[],
  };

  function send(res: ServerResponse, code: number, body: string): void {
    res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  function tokenReview(spec: Record<string, unknown>): Record<string, unknown> {
    const token = typeof spec['token'] === 'string' ? spec['token'] : '';
    const wanted = Array.isArray(spec['audiences']) ? spec['audiences'].filter((a): a is string => typeof a === 'string') : [];
    const t = state.tokens[token];
    if (t === undefined || t.expired === true) return {};
    if (t.reviewError !== undefined) return { error: t.reviewError };
    const against = wanted.length > 0 ? wanted : apiAudiences;
    const auds = (t.audiences ?? apiAudiences).filter((a) => against.includes(a));
    if (auds.length === 0) return {};
    const user: Record<string, unknown> = { username: t.user.username };
    if (t.user.uid !== undefined) user['uid'] = t.user.uid;
    if (t.user.groups !== undefined && t.user.groups.length > 0) user['groups'] = t.user.groups;
    if (t.user.extra !== undefined && Object.keys(t.user.extra).length > 0) user['extra'] = t.user.extra;
    const status: Record<string, unknown> = { authenticated: true, user };
    if (t.omitAudiences !== true) status['audiences'] = auds;
    return status;
  }

  function subjectAccessReview(spec: Record<string, unknown>): Record<string, unknown> | undefined {
    const ra = spec['resourceAttributes'];
    const nra = spec['nonResourceAttributes'];
    if ((ra === undefined) === (nra === undefined)) return undefined; // exactly one of them
    if (typeof spec['user'] !== 'string' || spec['user'] === '') return undefined;
    const attrs: FakeAttrs = {};
    if (isRecord(ra)) for (const k of ATTR_KEYS) if (typeof ra[k] === 'string') attrs[k] = ra[k];
    const groups = Array.isArray(spec['groups']) ? spec['groups'].filter((g): g is string => typeof g === 'string') : [];
    const extra: Record<string, string[]> = {};
    if (isRecord(spec['extra'])) {
      for (const [k, v] of Object.entries(spec['extra'])) if (Array.isArray(v)) extra[k] = v.filter((x): x is string => typeof x === 'string');
    }
    const user: FakeSarUser = { user: spec['user'], groups, extra };
    if (typeof spec['uid'] === 'string') user.uid = spec['uid'];
    switch (state.rule(user, attrs)) {
      case 'allow':
        return { allowed: true, reason: 'allowed by the fake rule' };
      case 'deny':
        return { allowed: false, denied: true, reason: 'denied by the fake rule' };
      case 'both':
        return { allowed: true, denied: true };
      case 'noopinion':
        return { allowed: false };
    }
  }

  function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    state.counts.requests++;
    state.authorizations.push(req.headers.authorization);
    switch (state.fault) {
      case 'hang':
        return; // the socket stays open, unanswered, until the client gives up or the server closes
      case 'close':
        req.socket.destroy();
        return;
      case 'status500':
        send(res, 500, statusBody(500, 'InternalError', 'Internal error occurred: the fake is failing on purpose'));
        return;
      case 'garbage':
        send(res, 200, '<html>this is not json');
        return;
      case undefined:
        break;
    }
    if (req.headers.authorization !== `Bearer ${state.callerToken}`) {
      state.counts.unauthorized++;
      send(res, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const url = req.url ?? '';
    const kind =
      url === '/apis/authentication.k8s.io/v1/tokenreviews'
        ? 'TokenReview'
        : url === '/apis/authorization.k8s.io/v1/subjectaccessreviews'
          ? 'SubjectAccessReview'
          : undefined;
    if (kind === undefined) {
      send(res, 404, statusBody(404, 'NotFound', `the server could not find the requested resource (${url})`));
      return;
    }
    if (req.method !== 'POST') {
      send(res, 405, statusBody(405, 'MethodNotAllowed', `${req.method ?? ''} is not supported`));
      return;
    }
    let review: unknown;
    try {
      review = JSON.parse(body);
    } catch {
      state.counts.badRequests++;
      send(res, 400, statusBody(400, 'BadRequest', 'the body is not JSON'));
      return;
    }
    const apiVersion = kind === 'TokenReview' ? 'authentication.k8s.io/v1' : 'authorization.k8s.io/v1';
    if (!isRecord(review) || review['apiVersion'] !== apiVersion || review['kind'] !== kind || !isRecord(review['spec'])) {
      state.counts.badRequests++;
      send(res, 400, statusBody(400, 'BadRequest', `not a ${apiVersion} ${kind}`));
      return;
    }
    const spec = review['spec'];
    state.received.push({ kind, spec });
    const override = state.respond?.(kind, spec);
    if (override !== undefined) {
      send(res, override.status, override.body);
      return;
    }
    let status: Record<string, unknown> | undefined;
    if (kind === 'TokenReview') {
      state.counts.tokenReviews++;
      status = tokenReview(spec);
    } else {
      status = subjectAccessReview(spec);
      if (status === undefined) {
        state.counts.badRequests++;
        send(
          res,
          422,
          statusBody(422, 'Invalid', 'SubjectAccessReview is invalid: spec: exactly one of resourceAttributes or nonResourceAttributes, and a user'),
        );
        return;
      }
      state.counts.subjectAccessReviews++;
    }
    send(res, 201, JSON.stringify({ kind, apiVersion, metadata: { creationTimestamp: null }, spec, status }));
  }

  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => {});

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      server.once('error', onError);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
    });

  const port = await listen(0);
  const fake: FakeApiServer = {
    url: `https://127.0.0.1:${port}`,
    port,
    caFile: ca.cert,
    ca,
    dir,
    get tokens() {
      return state.tokens;
    },
    set tokens(t) {
      state.tokens = t;
    },
    get rule() {
      return state.rule;
    },
    set rule(r) {
      state.rule = r;
    },
    get callerToken() {
      return state.callerToken;
    },
    set callerToken(t) {
      state.callerToken = t;
    },
    get fault() {
      return state.fault;
    },
    set fault(f) {
      state.fault = f;
    },
    get respond() {
      return state.respond;
    },
    set respond(r) {
      state.respond = r;
    },
    counts: state.counts,
    received: state.received,
    authorizations: state.authorizations,
    reviews() {
      return { tokenreview: state.counts.tokenReviews, subjectaccessreview: state.counts.subjectAccessReviews };
    },
    kubeconfig(o = {}) {
      const user = o.tokenFile !== undefined ? `tokenFile: ${JSON.stringify(o.tokenFile)}` : `token: ${JSON.stringify(state.callerToken)}`;
      return [
        'apiVersion: v1',
        'kind: Config',
        'current-context: fake',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${JSON.stringify(`https://127.0.0.1:${port}`)}`,
        `    certificate-authority: ${JSON.stringify(ca.cert)}`,
        'contexts:',
        '- name: fake',
        '  context: {cluster: fake, user: podvisor}',
        'users:',
        '- name: podvisor',
        '  user:',
        `    ${user}`,
        '',
      ].join('\n');
    },
    async restart() {
      await stop();
      await listen(port);
    },
    async close() {
      await stop();
    },
  };
  return fake;
}
