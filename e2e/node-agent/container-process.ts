/**
 * Running one container as a local process group: `unshare -m -u --propagation private -- sh -c <script>` (see
 * container-root.ts), stdout and stderr appended to one log file, killed by process group.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { closeSync, mkdirSync, openSync, rmdirSync } from 'node:fs';
import { posix } from 'node:path';

/** How a container process ended: `exitCode` is 128 + signal number when killed by a signal (shell convention). */
export interface ProcessExit {
  exitCode: number;
  signal?: number;
}

/** A started container process. */
export interface ContainerProcess {
  pid: number;
  /** Resolves once the main process has exited and the rest of its process group was killed. */
  exited: Promise<ProcessExit>;
  /** Send a signal to the whole process group (no error when it is gone). */
  kill(signal: NodeJS.Signals): void;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Start a container's setup-and-exec script in a new mount namespace and process group.
 *
 * @param script from `renderRootScript`, which mounts onto `rootDir`.
 * @param rootDir created here (empty) and removed after the process exits.
 * @param logFile stdout and stderr are appended to it (its folder is created).
 * @throws Error when `unshare` cannot be spawned at all.
 */
export function startContainerProcess(script: string, rootDir: string, logFile: string): ContainerProcess {
  mkdirSync(rootDir, { recursive: true });
  mkdirSync(posix.dirname(logFile), { recursive: true });
  const fd = openSync(logFile, 'a');
  let child;
  try {
    child = spawn('unshare', ['-m', '-u', '--propagation', 'private', '--', '/bin/sh', '-c', script], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid ?? -1;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('error', () => resolve({ exitCode: 128 }));
    child.once('exit', (code, signal) => {
      // Whatever the main process left behind dies with it, as in a container's cgroup.
      if (pid > 0) killGroup(pid, 'SIGKILL');
      // The mount namespace is gone with its last process; the mount point is an empty folder again.
      setTimeout(() => {
        try {
          rmdirSync(rootDir);
        } catch {
          // still busy or already removed
        }
      }, 200);
      if (signal) {
        const n = constants.signals[signal];
        resolve({ exitCode: 128 + n, signal: n });
      } else resolve({ exitCode: code ?? 128 });
    });
  });
  return { pid, exited, kill: (signal) => (pid > 0 ? killGroup(pid, signal) : undefined) };
}
