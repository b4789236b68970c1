/**
 * Deletes expired idempotency keys on a schedule (src/index.ts starts and stops it), in bounded
 * batches: each DELETE … LIMIT commits on its own, so a large backlog never holds a long lock, and one
 * run does at most `maxBatchesPerRun` of them (the next run goes on). Every replica may run one:
 * deleting an expired row twice is harmless. The timer is unref'd: it never keeps the process alive.
 */
import type { Db } from '../../db/client'
import { describeError, type Logger } from '../../lib/logger'
import { purgeExpiredKeys } from './store'

export interface IdempotencyJanitor {
  /** Runs once now, then every `intervalMs`. */
  start(): void
  /** Stops the schedule and waits for a run in progress. */
  stop(): Promise<void>
  /** One purge (what a scheduled run does); a run already in progress is joined, not doubled. */
  runOnce(now?: Date): Promise<{ deleted: number; batches: number }>
}

export interface IdempotencyJanitorOptions {
  db: Db
  log: Logger
  /** Default: 10 minutes. */
  intervalMs?: number
  /** Rows per DELETE; default 1000. */
  batchSize?: number
  /** DELETE statements per run; default 100. */
  maxBatchesPerRun?: number
}

export function createIdempotencyJanitor(options: IdempotencyJanitorOptions): IdempotencyJanitor {
  const { db, log, intervalMs = 10 * 60_000, batchSize = 1_000, maxBatchesPerRun = 100 } = options
  let timer: ReturnType<typeof setInterval> | undefined
  let running: Promise<{ deleted: number; batches: number }> | undefined

  function runOnce(now = new Date()) {
    running ??= purgeExpiredKeys(db, { now, batchSize, maxBatches: maxBatchesPerRun })
      .then((result) => {
        if (result.deleted > 0) log.info('purged expired idempotency keys', { deleted: result.deleted, batches: result.batches })
        return result
      })
      .finally(() => {
        running = undefined
      })
    return running
  }

  const scheduled = () =>
    void runOnce().catch((error) => log.warn('could not purge expired idempotency keys', describeError(error)))

  return {
    start() {
      if (timer !== undefined) return
      timer = setInterval(scheduled, intervalMs)
      timer.unref?.()
      scheduled()
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      await running?.catch(() => undefined)
    },
    runOnce,
  }
}
