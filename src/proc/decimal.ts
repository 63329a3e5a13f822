const DECIMAL = /^\d+$/;

/**
 * A kernel-printed unsigned decimal (`%u`, `%lu`, `%llu`) as a number, or `undefined` if the token is not one.
 * u64 counters above 2^53 lose precision, as they do in any Prometheus float sample.
 */
export function parseDecimal(token: string | undefined): number | undefined {
  if (token === undefined || !DECIMAL.test(token)) return undefined;
  return Number(token);
}
