/** Kubernetes delegated authentication and authorization, the kubelet's way; no fastify here (see http/app.ts). */
export { isSubpath, requestAttributes, verbOf } from './attributes.js';
export { SingleFlight, TtlCache } from './cache.js';
export {
  ALL_AUTHENTICATED,
  bearerToken,
  DEFAULT_TOKEN_TTL_MS,
  TokenAuthenticator,
  userFromCertificate,
  withAuthenticatedGroup,
  type AuthnOutcome,
  type TokenAuthenticatorOptions,
  type TokenReviewOutcome,
} from './authenticator.js';
export {
  DEFAULT_ALLOWED_TTL_MS,
  DEFAULT_DENIED_TTL_MS,
  SarAuthorizer,
  type AccessReviewOutcome,
  type AuthzDecision,
  type AuthzOutcome,
  type SarAuthorizerOptions,
} from './authorizer.js';
