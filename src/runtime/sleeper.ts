/**
 * A sleep that can be cut short: loops that wait between attempts (informer restarts, leader-election retries) use
 * it so that `stop()` or `release()` takes effect at once instead of after the current wait.
 */
export class Sleeper {
  private wakeCurrent: (() => void) | undefined;

  /**
   * Waits `seconds`, or until {@link wake} is called.
   *
   * @param seconds - how long, in seconds (fractions allowed).
   */
  sleep(seconds: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, seconds * 1000);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeCurrent = done;
    }).finally(() => {
      this.wakeCurrent = undefined;
    });
  }

  /** Ends the current sleep now (no effect when none is running). */
  wake(): void {
    this.wakeCurrent?.();
  }
}
