import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Name and version of this package, as written in its package.json. */
export interface PackageInfo {
  readonly name: string;
  readonly version: string;
}

/**
 * Reads this package's package.json by walking up from the calling module's directory
 * (works from `src/` under the test runner and from `dist/src/` when built).
 *
 * @param fromUrl - `import.meta.url` of the caller.
 * @returns the package name and version.
 * @throws Error when no package.json named `hostpath-provisioner` is found above the module.
 */
export function readPackageInfo(fromUrl: string): PackageInfo {
  let dir = dirname(fileURLToPath(fromUrl));
  for (;;) {
    try {
      const parsed = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Partial<PackageInfo>;
      if (parsed.name === 'hostpath-provisioner' && typeof parsed.version === 'string') {
        return { name: parsed.name, version: parsed.version };
      }
    } catch {
      // not here: keep walking up
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json of hostpath-provisioner not found');
    dir = parent;
  }
}
