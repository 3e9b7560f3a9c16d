/**
 * A container's environment, resolved like the kubelet's `makeEnvironmentVariables` (pkg/kubelet/kubelet_pods.go):
 * envFrom first, then env in order with `$(VAR)` expansion against what came before; fieldRef, configMapKeyRef
 * and secretKeyRef. Pure: ConfigMaps and Secrets are read through a lookup the caller filled beforehand.
 */
import type { V1Container, V1Pod } from '@kubernetes/client-node';

/** Data of ConfigMaps and Secrets in the pod's namespace (Secret values already decoded), by name. */
export interface EnvLookup {
  configMap(name: string): Record<string, string> | undefined;
  secret(name: string): Record<string, string> | undefined;
}

/** A container's environment cannot be built; the kubelet reports it as waiting reason CreateContainerConfigError. */
export class CreateContainerConfigError extends Error {
  override readonly name = 'CreateContainerConfigError';
}

/** Names of the ConfigMaps and Secrets a container's env and envFrom refer to. */
export function envReferences(container: V1Container): { configMaps: string[]; secrets: string[] } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const e of container.envFrom ?? []) {
    if (e.configMapRef?.name) configMaps.add(e.configMapRef.name);
    if (e.secretRef?.name) secrets.add(e.secretRef.name);
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.configMapKeyRef?.name) configMaps.add(e.valueFrom.configMapKeyRef.name);
    if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
  }
  return { configMaps: [...configMaps], secrets: [...secrets] };
}

/**
 * Expand `$(VAR)` references (k8s.io/kubernetes third_party/forked/golang/expansion): a defined variable is
 * replaced, an undefined one is left as written, `$$` is a literal `$`.
 */
export function expandVars(s: string, env: Readonly<Record<string, string>>): string {
  return s.replace(/\$\$|\$\(([^)]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$';
    return Object.hasOwn(env, name) ? (env[name] ?? '') : match;
  });
}

/**
 * The value of a downward-API `fieldRef` (metadata.name/namespace/uid, metadata.labels['k'],
 * metadata.annotations['k'], spec.nodeName, spec.serviceAccountName, status.hostIP(s), status.podIP(s)).
 *
 * @throws CreateContainerConfigError for an unsupported field path.
 */
export function fieldRefValue(pod: V1Pod, fieldPath: string, ips: { hostIP: string; podIP: string }): string {
  const sub = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(fieldPath);
  if (sub) {
    const map = sub[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[sub[2] ?? ''] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP':
    case 'status.hostIPs':
      return ips.hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return ips.podIP;
    default:
      throw new CreateContainerConfigError(`unsupported fieldPath: ${fieldPath}`);
  }
}

/** What the agent adds before the container's own variables. */
export interface EnvDefaults {
  /** The API server as in-cluster clients find it (pods share the host network, so loopback works). */
  apiServer?: { host: string; port: string };
}

/**
 * The environment of one container: defaults (`PATH`, `HOSTNAME`, `HOME`, `KUBERNETES_SERVICE_*`), then envFrom,
 * then env with `$(VAR)` expansion.
 *
 * @throws CreateContainerConfigError with the kubelet's wording when a referenced ConfigMap, Secret or key is
 *   missing and the reference is not optional.
 */
export function resolveEnv(
  pod: V1Pod,
  container: V1Container,
  lookup: EnvLookup,
  ips: { hostIP: string; podIP: string },
  defaults: EnvDefaults = {},
): Record<string, string> {
  const ns = pod.metadata?.namespace ?? '';
  const uid = container.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser ?? 0;
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: pod.spec?.hostname ?? pod.metadata?.name ?? '',
    HOME: uid === 0 ? '/root' : '/',
  };
  if (defaults.apiServer) {
    const { host, port } = defaults.apiServer;
    Object.assign(env, {
      KUBERNETES_SERVICE_HOST: host,
      KUBERNETES_SERVICE_PORT: port,
      KUBERNETES_SERVICE_PORT_HTTPS: port,
      KUBERNETES_PORT: `tcp://${host}:${port}`,
    });
  }
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    const kind = from.configMapRef ? 'configmap' : 'secret';
    if (!ref?.name) continue;
    const data = from.configMapRef ? lookup.configMap(ref.name) : lookup.secret(ref.name);
    if (!data) {
      if (ref.optional) continue;
      throw new CreateContainerConfigError(`${kind} "${ref.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of container.env ?? []) {
    const vf = e.valueFrom;
    if (!vf) {
      env[e.name] = expandVars(e.value ?? '', env);
    } else if (vf.fieldRef) {
      env[e.name] = fieldRefValue(pod, vf.fieldRef.fieldPath, ips);
    } else if (vf.configMapKeyRef || vf.secretKeyRef) {
      const ref = (vf.configMapKeyRef ?? vf.secretKeyRef)!;
      const isCm = Boolean(vf.configMapKeyRef);
      const data = isCm ? lookup.configMap(ref.name ?? '') : lookup.secret(ref.name ?? '');
      const value = data?.[ref.key];
      if (value !== undefined) env[e.name] = value;
      else if (!ref.optional) {
        throw new CreateContainerConfigError(
          data
            ? `couldn't find key ${ref.key} in ${isCm ? 'ConfigMap' : 'Secret'} ${ns}/${ref.name ?? ''}`
            : `${isCm ? 'configmap' : 'secret'} "${ref.name ?? ''}" not found`,
        );
      }
    } else if (vf.resourceFieldRef) {
      env[e.name] = '0';
    }
  }
  return env;
}
