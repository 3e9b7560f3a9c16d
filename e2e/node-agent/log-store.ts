/**
 * Container logs on disk, one file per container run, laid out like the kubelet's /var/log/pods:
 * `<logDir>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log` (stdout and stderr interleaved, raw).
 */
import { posix } from 'node:path';

/** The log file of one run of a container. */
export function containerLogPath(
  logDir: string,
  pod: { namespace: string; name: string; uid: string },
  container: string,
  restartCount: number,
): string {
  return posix.join(logDir, `${pod.namespace}_${pod.name}_${pod.uid}`, container, `${restartCount}.log`);
}

/** Options of the kubelet's `/containerLogs` endpoint that the agent honours (`PodLogOptions`). */
export interface LogSelection {
  /** Keep only the last N lines. */
  tailLines?: number;
  /** Stop after N bytes (applied after tailLines). */
  limitBytes?: number;
}

/**
 * Apply `tailLines` then `limitBytes` to a log, like the kubelet's log reader: a final newline ends the last line
 * rather than starting an empty one.
 */
export function selectLog(content: Buffer, sel: LogSelection): Buffer {
  let out = content;
  if (sel.tailLines !== undefined) {
    if (sel.tailLines <= 0) out = Buffer.alloc(0);
    else {
      let end = out.length;
      if (end > 0 && out[end - 1] === 0x0a) end--;
      let start = end;
      let lines = 0;
      while (start > 0) {
        if (out[start - 1] === 0x0a && ++lines === sel.tailLines) break;
        start--;
      }
      out = out.subarray(start);
    }
  }
  if (sel.limitBytes !== undefined && sel.limitBytes >= 0 && out.length > sel.limitBytes) {
    out = out.subarray(0, sel.limitBytes);
  }
  return out;
}
