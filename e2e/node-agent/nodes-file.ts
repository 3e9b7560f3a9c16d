/**
 * The nodes file: which Nodes the agent plays the kubelet for, validated once at start-up.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';

const taintSchema = z.strictObject({
  key: z.string().min(1),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});

/** A DNS-1123 subdomain, the rule for Node names. */
const nodeName = z
  .string()
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a DNS-1123 subdomain');

const nodeSchema = z.strictObject({
  name: nodeName,
  labels: z.record(z.string(), z.string()).default({}),
  taints: z.array(taintSchema).default([]),
  /** Kubernetes quantities, e.g. `{cpu: "4", memory: "8Gi"}`; merged over {@link DEFAULT_CAPACITY}. */
  capacity: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)).default({}),
  /** Images this node cannot pull, on top of the agent-wide list. */
  unpullableImages: z.array(z.string().min(1)).default([]),
});

const nodesFileSchema = z
  .array(nodeSchema)
  .min(1)
  .superRefine((nodes, ctx) => {
    const seen = new Set<string>();
    for (const [i, n] of nodes.entries()) {
      if (seen.has(n.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate node ${n.name}` });
      seen.add(n.name);
    }
  });

/** One node as declared in the nodes file, defaults applied. */
export type NodeSpec = z.infer<typeof nodeSchema>;
/** A taint as declared in the nodes file (Kubernetes `V1Taint` without timeAdded). */
export type TaintSpec = z.infer<typeof taintSchema>;

/** Capacity every node reports unless its entry overrides a key (kubelet reports these four at least). */
export const DEFAULT_CAPACITY: Readonly<Record<string, string>> = {
  cpu: '4',
  memory: '8Gi',
  pods: '110',
  'ephemeral-storage': '100Gi',
};

/**
 * Validate the parsed content of a nodes file.
 *
 * @param data the YAML document as plain data: a list of `{name, labels?, taints?, capacity?, unpullableImages?}`.
 * @returns the nodes with defaults (empty labels/taints/capacity overrides) applied, in file order.
 * @throws Error naming every invalid field (zod issues), or a duplicate node name.
 */
export function parseNodesFile(data: unknown): NodeSpec[] {
  const result = nodesFileSchema.safeParse(data);
  if (!result.success) {
    const details = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`invalid nodes file: ${details}`);
  }
  return result.data;
}

/**
 * Read and validate a nodes file from disk.
 *
 * @param path a YAML file (see e2e/node-agent/nodes.yaml).
 * @throws Error when the file cannot be read, is not YAML, or fails {@link parseNodesFile}.
 */
export function loadNodesFile(path: string): NodeSpec[] {
  return parseNodesFile(parse(readFileSync(path, 'utf8')));
}
