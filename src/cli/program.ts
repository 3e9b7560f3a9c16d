import { Command } from 'commander';
import { doctorCommand } from './doctor.js';
import { readPackageInfo } from './package-info.js';
import { runCommand } from './run.js';

/**
 * Builds the `hostpath-provisioner` command line (commander). Subcommands are added by their own modules.
 *
 * @returns the root command; `parseAsync(argv)` runs it.
 */
export function buildProgram(): Command {
  const info = readPackageInfo(import.meta.url);
  return new Command()
    .name(info.name)
    .description(
      "Kubernetes dynamic provisioner for hostPath volumes whose helper pods tolerate the target node's taints " +
        '(drop-in replacement for the MicroK8s hostpath-storage addon).',
    )
    .version(info.version, '-v, --version', 'print the version and exit')
    .showHelpAfterError()
    .addCommand(runCommand())
    .addCommand(doctorCommand());
}
