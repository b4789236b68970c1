/**
 * Backoff for periodic background work (rollout tracker, artifact poller): each consecutive failure
 * doubles the pause before the next run, up to `maxMs`; one success resets it. A database or cluster
 * that stops answering then costs a failed run now and then, not one every interval, and the work
 * resumes by itself once it answers.
 */
export interface Backoff {
  /** Whether a run may start now. */
  ready(now?: number): boolean
  succeeded(): void
  /** Records a failure; answers the pause (ms) before the next run. */
  failed(now?: number): number
}

export function createBackoff(options: { baseMs: number; maxMs: number }): Backoff {
  let failures = 0
  let nextAt = 0
  return {
    ready: (now = Date.now()) => now >= nextAt,
    succeeded() {
      failures = 0
      nextAt = 0
    },
    failed(now = Date.now()) {
      failures++
      const pause = Math.min(options.maxMs, options.baseMs * 2 ** (failures - 1))
      nextAt = now + pause
      return pause
    },
  }
}
