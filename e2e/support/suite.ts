/**
 * The usual frame of an e2e test file: before all tests, the default StorageClass (or the file's own setup), a
 * provisioner process, a recorder of its helper pods and a test namespace; after all, the namespace deleted and its
 * volumes cleaned up by the provisioner, then everything stopped.
 */
import { afterAll, beforeAll } from '@jest/globals';
import { createTestNamespace, type TestNamespace } from './cluster.js';
import {
  applyDefaultStorageClass,
  startProvisioner,
  type Provisioner,
  type ProvisionerOptions,
} from './provisioner.js';
import { drainNamespace, recordHelpers, type HelperRecorder } from './volumes.js';

/** What the tests of a file use; read it inside tests (it is filled in by `beforeAll`). */
export interface ProvisionerSuite {
  readonly ns: TestNamespace;
  readonly provisioner: Provisioner;
  readonly helpers: HelperRecorder;
}

/** Options of {@link provisionerSuite}. */
export interface SuiteOptions {
  /** Runs first (default: apply the StorageClass microk8s-hostpath from manifests/base). */
  readonly setup?: () => Promise<void>;
  /** How to start the provisioner. */
  readonly provisioner?: ProvisionerOptions;
  /** Runs last, after the provisioner stopped and the namespace was deleted. */
  readonly teardown?: () => Promise<void>;
}

/**
 * Registers `beforeAll`/`afterAll` hooks for one test file.
 *
 * @param prefix - short name of the file, part of the test namespace's name.
 * @returns accessors for the namespace, provisioner and helper recorder (throw when read before `beforeAll` ran).
 */
export function provisionerSuite(prefix: string, options: SuiteOptions = {}): ProvisionerSuite {
  let ns: TestNamespace | undefined;
  let provisioner: Provisioner | undefined;
  let helpers: HelperRecorder | undefined;
  beforeAll(async () => {
    await (options.setup ?? applyDefaultStorageClass)();
    provisioner = await startProvisioner(options.provisioner);
    helpers = await recordHelpers(provisioner.namespace);
    ns = await createTestNamespace(prefix);
  });
  afterAll(async () => {
    if (ns) await drainNamespace(ns);
    helpers?.stop();
    await provisioner?.stop();
    await options.teardown?.();
  });
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not ready: read it inside a test`);
    return value;
  };
  return {
    get ns() {
      return ready(ns, 'the test namespace');
    },
    get provisioner() {
      return ready(provisioner, 'the provisioner');
    },
    get helpers() {
      return ready(helpers, 'the helper recorder');
    },
  };
}
