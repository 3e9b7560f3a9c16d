/**
 * Plain Node and Lease objects the agent writes, built without I/O (the clock is an argument).
 * Follows what a kubelet registers (pkg/kubelet/kubelet_node_status.go) and renews (pkg/kubelet/nodelease).
 */
import { DEFAULT_CAPACITY, type NodeSpec } from './nodes-file.js';
import { microTime, rfc3339 } from './time.js';

/** Namespace of node heartbeat Leases. */
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
/** Lease duration a kubelet uses (`nodeLeaseDurationSeconds`), seconds. */
export const NODE_LEASE_DURATION_SECONDS = 40;

/** What the agent knows about the machine it reports for every node. */
export interface HostFacts {
  /** The node's InternalIP (the API server dials it for pods/log). */
  address: string;
  /** `kubernetes.io/arch`, Go style (`amd64`, `arm64`). */
  arch: string;
  kernelVersion: string;
  osImage: string;
  /** Reported as `nodeInfo.kubeletVersion`; the API server's version keeps skew checks quiet. */
  kubeletVersion: string;
  bootID: string;
}

/** Node conditions a healthy kubelet reports, in kubelet order, with its reasons and messages. */
const HEALTHY_CONDITIONS = [
  ['MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'],
  ['DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'],
  ['PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'],
  ['NetworkUnavailable', 'False', 'NodeAgentNetworkReady', 'pods share the host network'],
  ['Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'],
] as const;

/** Map Node.js `process.arch` to the Go architecture names Kubernetes labels use. */
export function goArch(nodeArch: string): string {
  return ({ x64: 'amd64', ia32: '386', arm: 'arm' } as Record<string, string>)[nodeArch] ?? nodeArch;
}

/**
 * The `status` of a healthy node: capacity = allocatable (defaults merged with the nodes file), the five
 * conditions with heartbeat `now` (transitions at `since`), InternalIP and Hostname addresses, the kubelet port,
 * nodeInfo.
 *
 * @param kubeletPort TCP port of this node's kubelet API (the agent's log server).
 * @param since when the conditions last changed (the agent's start), `now` the heartbeat time.
 */
export function buildNodeStatus(spec: NodeSpec, host: HostFacts, kubeletPort: number, now: Date, since: Date) {
  const capacity = { ...DEFAULT_CAPACITY, ...spec.capacity };
  return {
    capacity,
    allocatable: { ...capacity },
    conditions: HEALTHY_CONDITIONS.map(([type, status, reason, message]) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: rfc3339(now),
      lastTransitionTime: rfc3339(since),
    })),
    addresses: [
      { type: 'InternalIP', address: host.address },
      { type: 'Hostname', address: spec.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
    nodeInfo: {
      machineID: spec.name,
      systemUUID: spec.name,
      bootID: host.bootID,
      kernelVersion: host.kernelVersion,
      osImage: host.osImage,
      containerRuntimeVersion: 'hpp-node-agent://1',
      kubeletVersion: host.kubeletVersion,
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: host.arch,
    },
  };
}

/**
 * A Node to create: the nodes file's labels over the well-known ones (`kubernetes.io/hostname`, `os`, `arch`),
 * its taints, and {@link buildNodeStatus} (the API server keeps status given on create).
 */
export function buildNode(spec: NodeSpec, host: HostFacts, kubeletPort: number, now: Date) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: spec.name,
      labels: {
        'kubernetes.io/hostname': spec.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': host.arch,
        'beta.kubernetes.io/os': 'linux',
        'beta.kubernetes.io/arch': host.arch,
        ...spec.labels,
      },
    },
    spec: {
      taints: spec.taints.map((t) => ({
        key: t.key,
        effect: t.effect,
        ...(t.value !== undefined ? { value: t.value } : {}),
      })),
    },
    status: buildNodeStatus(spec, host, kubeletPort, now, now),
  };
}

/**
 * The node's heartbeat Lease in `kube-node-lease`: holder = node name, 40 s duration, `renewTime` in MicroTime
 * format, owned by the Node (so deleting the Node garbage-collects it).
 *
 * @param nodeUid the Node's `metadata.uid`, for the owner reference.
 */
export function buildNodeLease(nodeName: string, nodeUid: string, now: Date) {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: nodeName,
      namespace: NODE_LEASE_NAMESPACE,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid }],
    },
    spec: {
      holderIdentity: nodeName,
      leaseDurationSeconds: NODE_LEASE_DURATION_SECONDS,
      renewTime: microTime(now),
    },
  };
}
