/**
 * Polling an HTTP answer while someone looks at it: the public lobby on the home
 * screen, the spectator count in the watch view. Timers come in as dependencies
 * so tests drive them.
 */

export const DEFAULT_POLL_MS = 2000;

export interface PollerDeps<T> {
  load: () => Promise<T>;
  onUpdate: (value: T) => void;
  setTimer: (fn: () => void, ms: number) => unknown;
  clearTimer: (handle: unknown) => void;
  intervalMs?: number;
}

/**
 * Loads now and then every `intervalMs` after the previous answer (a
 * slow server never gets overlapping requests), until `stop()`. `start()` while
 * running does nothing; an answer that arrives after `stop()` is dropped.
 */
export class Poller<T> {
  private timer: unknown = null;
  /** Bumped by start/stop so a late answer from an earlier run is ignored. */
  private run = 0;
  private running = false;

  constructor(private readonly deps: PollerDeps<T>) {}

  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.run++;
    void this.poll(this.run);
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.run++;
    if (this.timer !== null) this.deps.clearTimer(this.timer);
    this.timer = null;
  }

  private async poll(run: number): Promise<void> {
    const value = await this.deps.load();
    if (run !== this.run) return;
    this.deps.onUpdate(value);
    this.timer = this.deps.setTimer(() => {
      this.timer = null;
      void this.poll(run);
    }, this.deps.intervalMs ?? DEFAULT_POLL_MS);
  }
}
