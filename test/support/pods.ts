import type { V1ContainerState, V1ContainerStatus } from '@kubernetes/client-node';

/**
 * The status of a helper pod's only container, as a kubelet reports it.
 *
 * @param state - waiting, running or terminated.
 * @param image - the container's image.
 */
export function helperContainer(state: V1ContainerState, image = 'b'): V1ContainerStatus {
  return { name: 'helper', image, imageID: '', ready: false, restartCount: 0, state };
}
