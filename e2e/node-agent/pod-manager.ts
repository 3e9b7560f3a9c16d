/**
 * Routes watched pods to one {@link PodWorker} each, for the nodes the agent serves; pods bound to any other node
 * are ignored.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { PodEvents } from './pod-watch.js';
import { PodWorker, type LogLookup, type WorkerContext } from './pod-worker.js';

export class PodManager implements PodEvents {
  private readonly workers = new Map<string, PodWorker>();

  /** @param contexts the worker context of each served node, by node name. */
  constructor(private readonly contexts: Map<string, WorkerContext>) {}

  upsert(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    const ctx = this.contexts.get(pod.spec?.nodeName ?? '');
    if (!uid || !ctx) return;
    let worker = this.workers.get(uid);
    if (!worker) {
      worker = new PodWorker(ctx, pod);
      this.workers.set(uid, worker);
    }
    worker.update(pod);
  }

  deleted(pod: V1Pod): void {
    const uid = pod.metadata?.uid ?? '';
    const worker = this.workers.get(uid);
    if (!worker) return;
    this.workers.delete(uid);
    void worker.remove();
  }

  relisted(pods: V1Pod[]): void {
    const present = new Set(pods.map((p) => p.metadata?.uid));
    for (const [uid, worker] of this.workers) {
      if (!present.has(uid)) {
        this.workers.delete(uid);
        void worker.remove();
      }
    }
    for (const pod of pods) this.upsert(pod);
  }

  /** Stop serving a node (its Node object was deleted): kill and forget its pods. */
  async dropNode(node: string): Promise<void> {
    this.contexts.delete(node);
    const dropping: Promise<void>[] = [];
    for (const [uid, worker] of this.workers) {
      if (worker.node === node) {
        this.workers.delete(uid);
        dropping.push(worker.remove());
      }
    }
    await Promise.all(dropping);
  }

  /** Kill every container (agent shutdown), without touching the API. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.remove()));
    this.workers.clear();
  }

  /** Find a container's log for the log server of `node`. */
  findLog(
    node: string,
    namespace: string,
    name: string,
    container: string,
    previous: boolean,
  ): LogLookup & { worker?: PodWorker } {
    for (const w of this.workers.values()) {
      if (w.node === node && w.namespace === namespace && w.name === name)
        return { ...w.logFile(container, previous), worker: w };
    }
    return { error: `pod ${namespace}/${name} not found on node ${node}` };
  }
}
