/**
 * A resilient list+watch of the pods bound to a node: list, then watch from the list's resourceVersion; a clean
 * close re-watches from the last version seen, any error (including 410 Gone) relists after a jittered back-off.
 * Every failure is logged; the loop stops only when asked.
 */
import { Watch, type CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { describeError, sleep } from './kube.js';
import type { Logger } from './logger.js';

/** Receives the watch's view of the pods. */
export interface PodEvents {
  /** Added or modified. */
  upsert(pod: V1Pod): void;
  deleted(pod: V1Pod): void;
  /** After each (re)list: the complete set, so handlers can drop what they missed being deleted. */
  relisted(pods: V1Pod[]): void;
}

/** Server-side watch timeout, seconds: below the client's 30 s inactivity timeout. */
const WATCH_TIMEOUT_SECONDS = 25;

/**
 * Start watching the pods matching `fieldSelector` in all namespaces.
 *
 * @returns a function that stops the watch.
 */
export function watchPods(
  kc: KubeConfig,
  core: CoreV1Api,
  fieldSelector: string,
  events: PodEvents,
  log: Logger,
): () => void {
  const stop = new AbortController();
  let current: AbortController | undefined;
  const loop = async () => {
    let failures = 0;
    let resourceVersion: string | undefined;
    while (!stop.signal.aborted) {
      try {
        if (resourceVersion === undefined) {
          const list = await core.listPodForAllNamespaces({ fieldSelector });
          resourceVersion = list.metadata?.resourceVersion ?? '';
          events.relisted(list.items);
        }
        const outcome = await new Promise<'closed' | 'expired' | Error>((resolve) => {
          const watch = new Watch(kc);
          watch
            .watch(
              '/api/v1/pods',
              { fieldSelector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: WATCH_TIMEOUT_SECONDS },
              (type: string, obj: V1Pod & { code?: number }) => {
                if (type === 'ERROR') {
                  resolve(obj.code === 410 ? 'expired' : new Error(`watch error: ${JSON.stringify(obj)}`));
                  return;
                }
                if (obj.metadata?.resourceVersion) resourceVersion = obj.metadata.resourceVersion;
                if (type === 'ADDED' || type === 'MODIFIED') events.upsert(obj);
                else if (type === 'DELETED') events.deleted(obj);
              },
              (err: unknown) => resolve(err ? (err instanceof Error ? err : new Error(describeError(err))) : 'closed'),
            )
            .then((c) => {
              current = c;
              if (stop.signal.aborted) c.abort();
            })
            .catch((err: unknown) => resolve(err instanceof Error ? err : new Error(String(err))));
        });
        if (outcome === 'closed') {
          failures = 0;
          continue;
        }
        resourceVersion = undefined;
        if (outcome === 'expired') {
          log.info('pod watch expired (410); relisting');
          continue;
        }
        throw outcome;
      } catch (err) {
        if (stop.signal.aborted) return;
        resourceVersion = undefined;
        failures++;
        const delay = Math.min(10_000, 500 * 2 ** Math.min(failures, 5)) * (0.5 + Math.random() / 2);
        log.warn({ err: describeError(err), failures, retryInMs: Math.round(delay) }, 'pod watch failed; relisting');
        await sleep(delay, stop.signal);
      }
    }
  };
  void loop();
  return () => {
    stop.abort();
    current?.abort();
  };
}
