/**
 * Exponential backoff with jitter — the one implementation used by the work queue, the informers and leader election.
 *
 * The un-jittered delay doubles per attempt, as client-go's `ItemExponentialFailureRateLimiter` does
 * (`base * 2^(attempt-1)`, capped at `max`). Jitter then takes away up to 20 % so that many keys or replicas failing
 * together do not retry in lock-step (also at the cap, where an un-jittered limiter would synchronise them).
 *
 * @param attempt - number of consecutive failures so far, ≥ 1 (0 or less is treated as 1; non-integers are floored).
 * @param baseSeconds - delay after the first failure, in seconds (> 0).
 * @param maxSeconds - upper bound of any delay, in seconds (≥ baseSeconds; a smaller value caps the base too).
 * @param random - source of uniform numbers in [0, 1); defaults to `Math.random` (inject for deterministic tests).
 * @returns the delay in seconds, in `(0.8 * d, d]` where `d = min(max, base * 2^(attempt-1))`.
 * @throws RangeError when baseSeconds or maxSeconds is not a positive finite number.
 */
export function backoffSeconds(
  attempt: number,
  baseSeconds: number,
  maxSeconds: number,
  random: () => number = Math.random,
): number {
  if (!(baseSeconds > 0) || !Number.isFinite(baseSeconds)) throw new RangeError(`invalid base delay ${baseSeconds}`);
  if (!(maxSeconds > 0) || !Number.isFinite(maxSeconds)) throw new RangeError(`invalid max delay ${maxSeconds}`);
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  // 2^60 already exceeds any sensible max; clamping keeps the arithmetic finite.
  const exponent = Math.min(n - 1, 60);
  const delay = Math.min(maxSeconds, baseSeconds * 2 ** exponent);
  const r = Math.min(Math.max(random(), 0), 1);
  return delay * (1 - 0.2 * r);
}
