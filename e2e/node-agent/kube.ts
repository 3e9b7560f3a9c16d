/** Small helpers around @kubernetes/client-node 2.x. */
import { ApiException, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';

/** Request options that send a body as a strategic merge patch (the client defaults to JSON Patch). */
export const strategicMerge = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
/** Request options that send a body as a JSON merge patch. */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** HTTP status of a failed API call (an `ApiException`), or undefined for other errors. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException ? err.code : undefined;
}

/**
 * A readable one-line description of a failed API call: the Status `message` when the body is a Status
 * (possibly as a JSON string), else the error message.
 */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const raw: unknown = err.body;
    let body: unknown = raw;
    if (typeof raw === 'string') {
      try {
        body = JSON.parse(raw);
      } catch {
        return `${err.code}: ${raw.slice(0, 300)}`;
      }
    }
    const message = (body as { message?: unknown } | undefined)?.message;
    return `${err.code}: ${typeof message === 'string' ? message : err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Resolve after `ms` milliseconds, or earlier (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
