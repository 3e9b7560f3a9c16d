/**
 * Owner, group and mode of a new volume directory, from the StorageClass parameters `uid`, `gid` and `mode`. Pure.
 * local-path-provisioner (v0.0.37) has the same three settings as `userPattern`, `groupPattern` and `permPattern`;
 * ours take numeric ids only, because a user or group name resolves through the helper image's /etc/passwd, not the
 * node's or the consumer pod's.
 */

/** The addon's mode for every volume directory; ours when a class sets no `mode`. */
export const DEFAULT_DIRECTORY_MODE = 0o777;

/** Largest uid or gid accepted: 2^32 − 2, since 4294967295 is `(uid_t)-1`, which chown(2) reads as "leave it". */
export const MAX_ID = 4294967294;

/** Owner, group and mode the create helper gives a volume directory. Undefined fields keep the addon's behaviour. */
export interface DirectoryOwnership {
  /** Owner uid to chown to; undefined leaves the owner as mkdir made it (root). */
  readonly uid: number | undefined;
  /** Group gid to chown to; undefined leaves the group as mkdir made it (root's, or the base's when it is setgid). */
  readonly gid: number | undefined;
  /** Permission bits 0..0o7777 (setuid, setgid and sticky included); undefined is {@link DEFAULT_DIRECTORY_MODE}. */
  readonly mode: number | undefined;
}

/** No class parameter set: mode 0777, no chown (the addon's behaviour). */
export const ADDON_OWNERSHIP: DirectoryOwnership = { uid: undefined, gid: undefined, mode: undefined };

/** Outcome of parsing one parameter value: the number, or why it was refused (the end of a sentence for an Event). */
export type NumberCheck =
  { readonly ok: true; readonly value: number } | { readonly ok: false; readonly reason: string };

/**
 * Parses a `uid` or `gid` parameter: a decimal integer 0..{@link MAX_ID}, digits only — no sign, no spaces, no
 * leading zero (a `0750` here is more likely a mode in the wrong place than the id 750), no names.
 *
 * @param value - the parameter's string.
 * @returns the id, or a reason; never throws.
 */
export function parseId(value: string): NumberCheck {
  if (!/^(0|[1-9][0-9]*)$/.test(value) || value.length > String(MAX_ID).length || Number(value) > MAX_ID) {
    return { ok: false, reason: `must be a decimal integer from 0 to ${MAX_ID} (a numeric id, not a name)` };
  }
  return { ok: true, value: Number(value) };
}

/**
 * Parses a `mode` parameter: one to four octal digits, as chmod(1) takes a numeric mode (`0770`, `770`, `2775`,
 * `1777`) — no `0o` prefix, no symbolic modes such as `u+rwx`, nothing above 07777.
 *
 * @param value - the parameter's string.
 * @returns the permission bits (0..0o7777), or a reason; never throws.
 */
export function parseMode(value: string): NumberCheck {
  if (!/^[0-7]{1,4}$/.test(value)) {
    return { ok: false, reason: 'must be an octal mode of at most 4 digits, e.g. "0770" or "2775"' };
  }
  return { ok: true, value: parseInt(value, 8) };
}

/** A mode as four octal digits, e.g. 0o2770 → `2770`, 0o777 → `0777`. */
export function formatMode(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** Whether the create helper must chown (and so needs CAP_CHOWN): the class sets `uid` or `gid`. */
export function needsChown(ownership: DirectoryOwnership): boolean {
  return ownership.uid !== undefined || ownership.gid !== undefined;
}

/** Whether a class sets any of `uid`, `gid`, `mode` (then the create helper checks the result with `stat`). */
export function isCustomOwnership(ownership: DirectoryOwnership): boolean {
  return needsChown(ownership) || ownership.mode !== undefined;
}

/**
 * The create helper's arguments after the directory, in the order its script reads them (`$2`..`$5`):
 * - the mode for chmod as five octal digits: with five, GNU chmod sets the setuid/setgid bits of a directory exactly
 *   as given, as busybox chmod always does (with four or fewer GNU keeps bits the directory already had);
 * - the uid and the gid, or '' each to leave them;
 * - the mode `stat -c %a` must then print (octal without leading zeros), or '' to check nothing (the addon's default).
 *
 * @param ownership - the class's ownership parameters.
 */
export function createHelperArguments(ownership: DirectoryOwnership): [string, string, string, string] {
  const mode = ownership.mode ?? DEFAULT_DIRECTORY_MODE;
  return [
    mode.toString(8).padStart(5, '0'),
    ownership.uid === undefined ? '' : String(ownership.uid),
    ownership.gid === undefined ? '' : String(ownership.gid),
    isCustomOwnership(ownership) ? mode.toString(8) : '',
  ];
}

/**
 * A short description for `doctor` and logs, e.g. `uid 1000, gid 2000, mode 2770`; '' when nothing is set.
 *
 * @param ownership - the class's ownership parameters.
 */
export function describeOwnership(ownership: DirectoryOwnership): string {
  return [
    ...(ownership.uid !== undefined ? [`uid ${ownership.uid}`] : []),
    ...(ownership.gid !== undefined ? [`gid ${ownership.gid}`] : []),
    ...(ownership.mode !== undefined ? [`mode ${formatMode(ownership.mode)}`] : []),
  ].join(', ');
}
