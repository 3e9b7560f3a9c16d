/**
 * Registering a Node and keeping it healthy, like the kubelet's node status loop and node lease controller:
 * create the Node (or adopt an existing one by updating its status), then every `periodMs` renew its Lease in
 * kube-node-lease and post the Ready heartbeat through the status subresource. A Node that disappears (a test
 * deleted it) is never re-created: the loop stops and `onGone` is called.
 */
import type { CoordinationV1Api, CoreV1Api, V1Lease, V1Node } from '@kubernetes/client-node';
import { apiStatus, describeError, mergePatch, sleep, strategicMerge } from './kube.js';
import type { Logger } from './logger.js';
import { buildNode, buildNodeLease, buildNodeStatus, NODE_LEASE_NAMESPACE, type HostFacts } from './node-object.js';
import type { NodeSpec } from './nodes-file.js';

export interface HeartbeatOptions {
  core: CoreV1Api;
  coordination: CoordinationV1Api;
  log: Logger;
  spec: NodeSpec;
  host: HostFacts;
  kubeletPort: number;
  /** Renew period, milliseconds (the kubelet renews every 10 s). */
  periodMs: number;
  now: () => Date;
  /** Called once when the Node has been deleted by someone else. */
  onGone: (node: string) => void;
}

/**
 * Register the node and start its heartbeat.
 *
 * @returns a function that stops the heartbeat (the Node stays).
 */
export function startHeartbeat(opts: HeartbeatOptions): () => void {
  const stop = new AbortController();
  const { core, coordination, spec, log } = opts;
  const name = spec.name;
  const since = opts.now();

  const register = async (): Promise<string> => {
    for (let attempt = 1; ; attempt++) {
      try {
        try {
          // Times are RFC 3339 strings already; the client passes strings through unchanged.
          const body = buildNode(spec, opts.host, opts.kubeletPort, opts.now()) as unknown as V1Node;
          const created = await core.createNode({ body });
          log.info({ node: name }, 'node registered');
          return created.metadata?.uid ?? '';
        } catch (err) {
          if (apiStatus(err) !== 409) throw err;
          const adopted = await core.patchNodeStatus(
            { name, body: { status: buildNodeStatus(spec, opts.host, opts.kubeletPort, opts.now(), since) } },
            strategicMerge,
          );
          log.info({ node: name }, 'node existed: adopted');
          return adopted.metadata?.uid ?? '';
        }
      } catch (err) {
        if (stop.signal.aborted) throw err;
        log.warn({ node: name, err: describeError(err), attempt }, 'node registration failed; retrying');
        await sleep(Math.min(5000, 250 * attempt), stop.signal);
      }
    }
  };

  const renewLease = async (uid: string) => {
    const lease = buildNodeLease(name, uid, opts.now());
    try {
      await coordination.patchNamespacedLease(
        { name, namespace: NODE_LEASE_NAMESPACE, body: { spec: lease.spec } },
        mergePatch,
      );
    } catch (err) {
      if (apiStatus(err) !== 404) throw err;
      // renewTime is already a MicroTime string; the client passes strings through unchanged.
      await coordination.createNamespacedLease({ namespace: NODE_LEASE_NAMESPACE, body: lease as unknown as V1Lease });
    }
  };

  const loop = async () => {
    const uid = await register();
    while (!stop.signal.aborted) {
      try {
        await core.patchNodeStatus(
          { name, body: { status: buildNodeStatus(spec, opts.host, opts.kubeletPort, opts.now(), since) } },
          strategicMerge,
        );
        await renewLease(uid);
      } catch (err) {
        if (apiStatus(err) === 404) {
          log.info({ node: name }, 'node deleted: no longer serving it');
          opts.onGone(name);
          return;
        }
        log.warn({ node: name, err: describeError(err) }, 'heartbeat failed');
      }
      await sleep(opts.periodMs, stop.signal);
    }
  };
  loop().catch((err) => log.error({ node: name, err: describeError(err) }, 'heartbeat stopped'));
  return () => stop.abort();
}
