/** Which images the agent pretends it cannot pull, and the kubelet's wording for it. */

/**
 * Normalise an image reference the way containerd does: `busybox` → `docker.io/library/busybox:latest`,
 * `org/app:1` → `docker.io/org/app:1`; a first path component with a dot, a colon or `localhost` is a registry.
 */
export function normalizeImageRef(image: string): string {
  let ref = image;
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  if (slash < 0) ref = `docker.io/library/${ref}`;
  else if (!(first.includes('.') || first.includes(':') || first === 'localhost')) ref = `docker.io/${ref}`;
  const lastPart = ref.slice(ref.lastIndexOf('/') + 1);
  if (!lastPart.includes(':') && !ref.includes('@')) ref = `${ref}:latest`;
  return ref;
}

/**
 * Whether pulling `image` fails: it is on the list (as written in the pod or normalised), or its name contains
 * `does-not-exist`.
 *
 * @param unpullable image references from `--unpullable-images`, `UNPULLABLE_IMAGES` and the node's entry.
 */
export function isUnpullable(image: string, unpullable: readonly string[]): boolean {
  if (image.includes('does-not-exist')) return true;
  const ref = normalizeImageRef(image);
  return unpullable.some((u) => u === image || normalizeImageRef(u) === ref);
}

/** The waiting message of ErrImagePull, as containerd reports a missing image through the kubelet. */
export function errImagePullMessage(image: string): string {
  const ref = normalizeImageRef(image);
  return (
    `rpc error: code = NotFound desc = failed to pull and unpack image "${ref}": ` +
    `failed to resolve reference "${ref}": ${ref}: not found`
  );
}

/** The waiting message of ImagePullBackOff (pkg/kubelet/images: `Back-off pulling image %q`). */
export function imagePullBackOffMessage(image: string): string {
  return `Back-off pulling image "${image}": ErrImagePull: ${errImagePullMessage(image)}`;
}
