/**
 * Names shared with Kubernetes and with the MicroK8s hostpath-storage addon. Each value is part of a contract:
 * changing one breaks compatibility with the addon, the PV controller or users' dashboards.
 */

/** Provisioner name of the MicroK8s addon (and our default). */
export const DEFAULT_PROVISIONER_NAME = 'microk8s.io/hostpath';

/** Claim annotation set by the PV controller naming the provisioner that should serve it (GA key, read first). */
export const ANN_STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
/** The beta key of the same annotation, still written by the PV controller for old provisioners. */
export const ANN_STORAGE_PROVISIONER_BETA = 'volume.beta.kubernetes.io/storage-provisioner';
/**
 * The pre-1.6 way to name a claim's or PV's StorageClass, still honoured by the PV controller — and read *before*
 * `spec.storageClassName` (see class-name.ts).
 */
export const ANN_STORAGE_CLASS_BETA = 'volume.beta.kubernetes.io/storage-class';
/** Claim annotation set by the scheduler's VolumeBinding plugin for WaitForFirstConsumer claims. */
export const ANN_SELECTED_NODE = 'volume.kubernetes.io/selected-node';
/** PV annotation naming the provisioner that created it (read by the PV controller to find the deleter). */
export const ANN_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
/** PV annotation of the addon: the node name of the provisioner that created it. Any value is accepted. */
export const ANN_PROVISIONER_IDENTITY = 'hostPathProvisionerIdentity';
/** Finalizer of sig-storage-lib-external-provisioner: a PV with reclaim policy Delete keeps it until cleanup is done. */
export const VOLUME_FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';
/** Well-known node label holding the hostname; PV node affinity uses it. */
export const LABEL_HOSTNAME = 'kubernetes.io/hostname';

/** Labels and annotations we put on helper pods. */
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'hostpath-provisioner';
export const LABEL_HELPER_OPERATION = 'hostpath-provisioner.io/operation';
export const LABEL_HELPER_VOLUME = 'hostpath-provisioner.io/volume';
export const ANN_HELPER_VOLUME = 'hostpath-provisioner.io/volume-name';
export const ANN_HELPER_CLAIM = 'hostpath-provisioner.io/claim';
export const ANN_HELPER_CLAIM_UID = 'hostpath-provisioner.io/claim-uid';
export const ANN_HELPER_PATH = 'hostpath-provisioner.io/path';
/** On delete helpers: the uid of the PV whose directory they remove (a helper outliving its PV object is never adopted). */
export const ANN_HELPER_VOLUME_UID = 'hostpath-provisioner.io/volume-uid';
/**
 * Node annotation an administrator sets to give that node its own base directory of volumes (a data disk mounted
 * elsewhere on it): read for classes with the parameter `pvDirFromNode: "true"`, and trusted as a base directory by
 * deletion and the orphan report for volumes on that node. Validated like `pvDir`.
 */
export const ANN_NODE_PV_DIR = 'hostpath-provisioner.io/pv-dir';
/**
 * PV annotation ("true") we write on volumes of a class with `sharedFileSystem: "true"`: the directory is on storage
 * every node of the PV's node affinity (none: every node) mounts at the same path, so the PV is not pinned to one node
 * and its delete helper may run on any of them.
 */
export const ANN_SHARED_FILE_SYSTEM = 'hostpath-provisioner.io/shared-file-system';
/** Label selector that finds every helper pod of ours. */
export const HELPER_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}`;
/** Name of the helper pod's only container (its log is read on failure). */
export const HELPER_CONTAINER = 'helper';
/** Where the helper pod mounts the volume's base directory. */
export const HELPER_MOUNT_PATH = '/hostpath-base';

/** The addon's default base directory on every node. */
export const DEFAULT_PV_DIR = '/var/snap/microk8s/common/default-storage';
