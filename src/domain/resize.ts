import type {
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1PersistentVolumeClaimCondition,
  V1StorageClass,
} from '@kubernetes/client-node';
import { claimClassName } from './class-name.js';
import { compareQuantities } from './quantity.js';
import { isOurVolume } from './volume.js';

/**
 * Volume expansion as kubernetes-csi/external-resizer does it with RecoverVolumeExpansionFailure (GA in 1.34), for
 * volumes whose size is bookkeeping: a hostPath or `local` directory has no quota, so "expanding" it is recording the
 * new size on the PV (`spec.capacity`) and on the claim (`status.capacity`). No node-side step follows: the in-tree
 * hostPath plugin is not node-expandable, and the `local` plugin's NodeExpand is a no-op for a directory
 * (kubernetes/kubernetes `pkg/volume/hostpath/host_path.go`, `pkg/volume/local/local.go`), so the claim is finished
 * from the controller as the external-resizer does when a driver needs no node expansion
 * (`markOverallExpansionAsFinished` in external-resizer `pkg/controller/resize_status.go`).
 */

/** `status.allocatedResourceStatuses[storage]` values (k8s.io/api core/v1 `ClaimResourceStatus`). */
export const CONTROLLER_RESIZE_IN_PROGRESS = 'ControllerResizeInProgress';
export const CONTROLLER_RESIZE_INFEASIBLE = 'ControllerResizeInfeasible';
export const NODE_RESIZE_PENDING = 'NodeResizePending';
export const NODE_RESIZE_IN_PROGRESS = 'NodeResizeInProgress';
export const NODE_RESIZE_INFEASIBLE = 'NodeResizeInfeasible';

/** Claim condition types that belong to resizing (external-resizer `pkg/util/util.go` `knownResizeConditions`). */
export const RESIZE_CONDITIONS: readonly string[] = [
  'Resizing',
  'FileSystemResizePending',
  'ControllerResizeError',
  'NodeResizeError',
];

/** A claim condition as it is written in a patch (times as RFC 3339 strings). */
export interface PatchCondition {
  readonly type: string;
  readonly status: string;
  readonly lastProbeTime?: string;
  readonly lastTransitionTime?: string;
  readonly reason?: string;
  readonly message?: string;
}

/**
 * A JSON merge patch (RFC 7386) of a claim's status subresource. Maps merge key by key (`null` removes a key), the
 * conditions list is replaced whole (`null` removes it). With `metadata.resourceVersion` the API server applies it
 * only to that version (409 Conflict otherwise), like external-resizer's `addResourceVersionCheck`.
 */
export interface ClaimStatusPatch {
  readonly metadata?: { readonly resourceVersion: string };
  readonly status: {
    readonly conditions?: readonly PatchCondition[] | null;
    readonly capacity?: { readonly storage: string };
    readonly allocatedResources?: { readonly storage: string };
    readonly allocatedResourceStatuses?: { readonly storage: string | null };
  };
}

/** A JSON merge patch of a PV: its new capacity. */
export interface VolumePatch {
  readonly spec: { readonly capacity: { readonly storage: string } };
}

/** What the resize reconciler does next for a claim. */
export type ResizeDecision =
  /** Not ours, not bound, not allowed, nothing requested, or waiting for someone else (a reason for debug logs). */
  | { readonly action: 'none'; readonly why: string }
  /** The last attempt at `size` was infeasible: retry slowly (external-resizer's slow set), changing nothing now. */
  | { readonly action: 'wait'; readonly size: string; readonly why: string }
  /** Record the resize as started: `allocatedResources`, ControllerResizeInProgress, condition Resizing. */
  | { readonly action: 'start'; readonly size: string; readonly patch: ClaimStatusPatch }
  /** Patch the PV's `spec.capacity` (Warning VolumeResizeFailed if the API server refuses: see {@link failResize}). */
  | { readonly action: 'expand'; readonly size: string; readonly volume: string; readonly patch: VolumePatch }
  /** Record the resize as finished: `status.capacity`, resize conditions and status removed. */
  | { readonly action: 'finish'; readonly size: string; readonly patch: ClaimStatusPatch };

/** Inputs of {@link decideResize}. */
export interface ResizeInput {
  /** The claim as cached (or as the last patch returned it). */
  readonly claim: V1PersistentVolumeClaim;
  /** Its PV (`spec.volumeName`) as cached or as the last patch returned it; undefined when not known. */
  readonly volume: V1PersistentVolume | undefined;
  /** The claim's StorageClass; undefined when it does not exist. */
  readonly storageClass: V1StorageClass | undefined;
  /** The provisioner names we answer to. */
  readonly provisionerNames: readonly string[];
  /**
   * This process saw the last attempt for this claim fail with a final error (the API server refused the PV's new
   * capacity): external-resizer's `finalErrorPVCs`, which lets a lowered request replace `allocatedResources`.
   */
  readonly finalError: boolean;
  /** The slow retry of an infeasible size is due (external-resizer's slow set has let the claim go). */
  readonly retryInfeasible: boolean;
  /** Now, RFC 3339 (for `lastTransitionTime`; passed in so this stays free of a clock). */
  readonly now: string;
}

/** RFC 3339 without milliseconds when they are zero (as the API server writes `metav1.Time`). */
export function rfc3339(time: Date | string): string {
  const text = typeof time === 'string' ? time : time.toISOString();
  return text.replace(/\.000Z$/, 'Z');
}

/** A cached condition as a patch condition (Dates back to strings, empty fields left out). */
function asPatchCondition(c: V1PersistentVolumeClaimCondition): PatchCondition {
  const out: Record<string, string> = { type: c.type, status: c.status };
  if (c.lastProbeTime) out['lastProbeTime'] = rfc3339(c.lastProbeTime);
  if (c.lastTransitionTime) out['lastTransitionTime'] = rfc3339(c.lastTransitionTime);
  if (c.reason) out['reason'] = c.reason;
  if (c.message) out['message'] = c.message;
  return out as unknown as PatchCondition;
}

/**
 * Merges resize conditions into a claim's conditions as external-resizer's `MergeResizeConditionsOfPVC`
 * (`pkg/util/util.go`): other conditions are kept in place; a resize condition of a type in `add` is replaced there;
 * other resize conditions are kept only with `keepOldResizeConditions`; the rest of `add` is appended.
 *
 * @returns the new list, or null when it is empty (a merge patch then removes the field).
 */
export function mergeResizeConditions(
  old: readonly V1PersistentVolumeClaimCondition[] | undefined,
  add: readonly PatchCondition[],
  keepOldResizeConditions: boolean,
): PatchCondition[] | null {
  const pending = new Map(add.map((c) => [c.type, c]));
  const out: PatchCondition[] = [];
  for (const c of old ?? []) {
    if (!RESIZE_CONDITIONS.includes(c.type)) {
      out.push(asPatchCondition(c));
      continue;
    }
    const replacement = pending.get(c.type);
    if (replacement) {
      out.push(replacement);
      pending.delete(c.type);
    } else if (keepOldResizeConditions) out.push(asPatchCondition(c));
  }
  out.push(...pending.values());
  return out.length > 0 ? out : null;
}

/**
 * Whether a claim may have resize work: bound, and its request is above its capacity or a resize status is set.
 * A cheap filter for informer events; {@link decideResize} decides.
 */
export function resizeRequested(claim: V1PersistentVolumeClaim): boolean {
  if (!claim.spec?.volumeName || claim.status?.phase !== 'Bound') return false;
  const requested = claim.spec.resources?.requests?.['storage'];
  return compareQuantities(requested, claim.status.capacity?.['storage']) > 0;
}

/** The guard of a patch: the claim's resourceVersion, when known. */
function versionGuard(claim: V1PersistentVolumeClaim): Pick<ClaimStatusPatch, 'metadata'> {
  const resourceVersion = claim.metadata?.resourceVersion;
  return resourceVersion ? { metadata: { resourceVersion } } : {};
}

const same = (a: string | undefined, b: string | undefined) =>
  a !== undefined && b !== undefined && compareQuantities(a, b) === 0;

/**
 * The size to expand to, as external-resizer's `expandAndRecover` (`pkg/controller/expand_and_recover.go`) chooses it
 * from the request, the PV's capacity, `allocatedResources` and the resize status; undefined when there is nothing to
 * do until another controller moves (a node-side step in progress, which this provisioner never starts).
 *
 * One refinement: an `allocatedResources` at or below `status.capacity` is a resize that finished, not one to resume
 * (upstream would expand to it again and finish below the request, forever).
 */
function sizeToExpandTo(
  requested: string,
  volumeSize: string | undefined,
  allocated: string | undefined,
  status: string,
  finalError: boolean,
  fileSystemResizePending: boolean,
): string | undefined {
  if (compareQuantities(volumeSize, requested) < 0) {
    // The PV is smaller than the request: let a previous expansion finish before starting a new one.
    switch (status) {
      case NODE_RESIZE_INFEASIBLE:
        return allocated ?? requested;
      case NODE_RESIZE_PENDING:
      case NODE_RESIZE_IN_PROGRESS: {
        const size = allocated ?? requested;
        return compareQuantities(volumeSize, size) >= 0 ? undefined : size;
      }
      case CONTROLLER_RESIZE_IN_PROGRESS:
        // An uncertain earlier attempt resumes at its size; after a final error the (lowered) request wins.
        return finalError ? requested : (allocated ?? requested);
      default:
        return requested;
    }
  }
  // The PV already has the request: a spurious event, the status not recorded yet, or the request lowered.
  switch (status) {
    case NODE_RESIZE_IN_PROGRESS:
    case NODE_RESIZE_PENDING:
      return undefined;
    case NODE_RESIZE_INFEASIBLE:
    case CONTROLLER_RESIZE_IN_PROGRESS:
    case CONTROLLER_RESIZE_INFEASIBLE:
      return allocated ?? requested;
    case '':
      if (allocated !== undefined) return allocated;
      return fileSystemResizePending ? undefined : requested;
    default:
      return fileSystemResizePending ? undefined : requested;
  }
}

/**
 * Decides the next step of expanding a claim of ours, level-based: the same inputs give the same step, so a restart
 * anywhere resumes from the claim's and PV's status fields alone (external-resizer `pkg/controller/controller.go`
 * `syncPVC` and `expand_and_recover.go`). The steps are start → expand → finish; each is one API write.
 *
 * A claim is ours to expand when it is Bound to a PV we provisioned whose `claimRef` has the claim's uid, its
 * StorageClass names one of our provisioners and has `allowVolumeExpansion: true` (the PersistentVolumeClaimResize
 * admission plugin refuses a larger request otherwise), and its request is above `status.capacity`
 * (`pvcNeedResize`). A request lowered after a failure is never below `status.capacity`: the API server refuses that
 * (`spec.resources.requests.storage: Forbidden: field can not be less than status.capacity`).
 *
 * @param input - claim, PV, class, names and this process's memory of the claim; see {@link ResizeInput}.
 * @returns the step; patches are JSON merge patches (claim ones for the `status` subresource).
 */
export function decideResize(input: ResizeInput): ResizeDecision {
  const { claim, volume, storageClass, provisionerNames } = input;
  if (claim.metadata?.deletionTimestamp) return { action: 'none', why: 'claim is being deleted' };
  const volumeName = claim.spec?.volumeName;
  if (!volumeName || claim.status?.phase !== 'Bound') return { action: 'none', why: 'claim is not bound' };
  const className = claimClassName(claim);
  if (!storageClass) return { action: 'none', why: `StorageClass ${JSON.stringify(className)} not found` };
  if (!provisionerNames.includes(storageClass.provisioner)) {
    return { action: 'none', why: `StorageClass ${className} belongs to ${storageClass.provisioner}` };
  }
  if (storageClass.allowVolumeExpansion !== true) {
    return { action: 'none', why: `StorageClass ${className} does not allow volume expansion` };
  }
  if (!volume) return { action: 'none', why: `volume ${volumeName} not known yet` };
  if (!isOurVolume(volume, provisionerNames)) return { action: 'none', why: `volume ${volumeName} is not ours` };
  const ref = volume.spec?.claimRef;
  if (ref?.uid !== claim.metadata?.uid || ref?.namespace !== claim.metadata?.namespace) {
    return { action: 'none', why: `volume ${volumeName} is not bound to this claim` };
  }
  const requested = claim.spec?.resources?.requests?.['storage'];
  const capacity = claim.status.capacity?.['storage'];
  if (requested === undefined || compareQuantities(requested, capacity) <= 0) {
    return { action: 'none', why: 'no resize requested' };
  }

  const volumeSize = volume.spec?.capacity?.['storage'];
  const allocated = claim.status.allocatedResources?.['storage'];
  const unfinished = compareQuantities(allocated, capacity) > 0 ? allocated : undefined;
  const status = claim.status.allocatedResourceStatuses?.['storage'] ?? '';
  const fileSystemResizePending = (claim.status.conditions ?? []).some(
    (c) => c.type === 'FileSystemResizePending' && c.status === 'True',
  );
  const size = sizeToExpandTo(requested, volumeSize, unfinished, status, input.finalError, fileSystemResizePending);
  if (size === undefined) return { action: 'none', why: `waiting for the node (${status})` };

  if (status === CONTROLLER_RESIZE_INFEASIBLE && same(allocated, size) && !input.retryInfeasible) {
    return { action: 'wait', size, why: `expansion to ${size} was infeasible; retried slowly` };
  }
  if (status !== CONTROLLER_RESIZE_IN_PROGRESS || !same(allocated, size)) {
    const resizing: PatchCondition = { type: 'Resizing', status: 'True', lastTransitionTime: input.now };
    return {
      action: 'start',
      size,
      patch: {
        ...versionGuard(claim),
        status: {
          conditions: mergeResizeConditions(claim.status.conditions, [resizing], false),
          allocatedResources: { storage: size },
          allocatedResourceStatuses: { storage: CONTROLLER_RESIZE_IN_PROGRESS },
        },
      },
    };
  }
  if (compareQuantities(volumeSize, size) < 0) {
    return { action: 'expand', size, volume: volumeName, patch: { spec: { capacity: { storage: size } } } };
  }
  return {
    action: 'finish',
    size,
    patch: {
      ...versionGuard(claim),
      status: {
        capacity: { storage: size },
        conditions: mergeResizeConditions(claim.status.conditions, [], false),
        allocatedResourceStatuses: { storage: null },
      },
    },
  };
}

/** Named reasons a resize fails (log fields and event text). */
export type ResizeFailureReason = 'volume_refused';

/** A failed expansion: Warning VolumeResizeFailed with `message`, and the claim marked infeasible. */
export interface ResizeFailure {
  readonly action: 'fail';
  readonly reason: ResizeFailureReason;
  readonly message: string;
  readonly patch: ClaimStatusPatch;
}

/**
 * The step after a final error of the expansion (the API server refused the PV's new capacity: a policy webhook, a
 * validation): as external-resizer's `markControllerExpansionInfeasible` (`pkg/controller/resize_status.go`), the
 * resize status becomes ControllerResizeInfeasible and a ControllerResizeError condition carries the message, the
 * other resize conditions kept. Not guarded by resourceVersion (upstream neither: the failure must be recorded).
 * The user may then lower the request (above `status.capacity`) and the next {@link decideResize} starts over.
 *
 * @param claim - the claim as last read.
 * @param reason - the named reason.
 * @param message - what the API server said.
 * @param now - RFC 3339.
 */
export function failResize(
  claim: V1PersistentVolumeClaim,
  reason: ResizeFailureReason,
  message: string,
  now: string,
): ResizeFailure {
  const error: PatchCondition = {
    type: 'ControllerResizeError',
    status: 'True',
    lastTransitionTime: now,
    message: `failed to expand pvc with ${message}`,
  };
  return {
    action: 'fail',
    reason,
    message,
    patch: {
      status: {
        conditions: mergeResizeConditions(claim.status?.conditions, [error], true),
        allocatedResourceStatuses: { storage: CONTROLLER_RESIZE_INFEASIBLE },
      },
    },
  };
}
