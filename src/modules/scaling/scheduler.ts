/**
 * The scaling tick: compute the effective bounds of every scheduled target and apply only those that
 * differ from what is applied. Level-triggered — it compares the wanted state with the applied one
 * and never replays window edges, so after downtime or a missed tick the next tick converges.
 *
 * Written against small interfaces (list the targets, set bounds, record an event) so the same tick
 * runs from the in-process cron job, from the serverless tick endpoint, and in tests and benchmarks
 * with in-memory fakes. `Scheduler` adds the database lease so only one replica acts at a time.
 */
import type { Executor } from '../../db/client'
import { release, tryAcquire } from '../../lib/lease'
import { effectiveBounds, type ReplicaBounds, type ScalingSchedule } from './windows'

/** A deployed (serve, env) with a scaling schedule. Callers may carry more fields (ids, cluster handles). */
export interface ScalingTarget {
  serve: string
  env: string
  schedule: ScalingSchedule
  /** The infra config's min/max replicas: what holds outside every window. */
  base: ReplicaBounds
  /** The bounds last applied to the cluster. */
  applied: ReplicaBounds
}

export interface ScalingEvent<T extends ScalingTarget = ScalingTarget> {
  target: T
  at: Date
  from: ReplicaBounds
  to: ReplicaBounds
  /** The windows open at `at` (empty: back to the base bounds). */
  windows: string[]
  outcome: 'applied' | 'failed'
  error?: string
}

export interface TickDeps<T extends ScalingTarget = ScalingTarget> {
  listTargets(): Promise<T[]>
  /** The cluster driver call (HPA min/max patch or the DCM equivalent); also records the bounds as applied. */
  setBounds(target: T, bounds: ReplicaBounds): Promise<void>
  recordEvent(event: ScalingEvent<T>): Promise<void>
  now: Date
  /** Cluster calls in flight at once: a slow cluster must not make a tick over thousands of targets serial. */
  concurrency?: number
}

export interface TickResult {
  targets: number
  changed: number
  unchanged: number
  failed: number
  failures: { serve: string; env: string; error: string }[]
}

export const DEFAULT_TICK_CONCURRENCY = 8

const message = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** One pass over every target; a failure on one target is counted and does not stop the others. */
export async function runTick<T extends ScalingTarget>(deps: TickDeps<T>): Promise<TickResult> {
  const targets = await deps.listTargets()
  const result: TickResult = { targets: targets.length, changed: 0, unchanged: 0, failed: 0, failures: [] }
  const fail = (target: T, error: unknown) => {
    result.failed++
    result.failures.push({ serve: target.serve, env: target.env, error: message(error) })
  }

  const changes: { target: T; bounds: ReplicaBounds; windows: string[] }[] = []
  for (const target of targets) {
    try {
      const { min, max, windows } = effectiveBounds(target.schedule, target.base, deps.now)
      if (min === target.applied.min && max === target.applied.max) result.unchanged++
      else changes.push({ target, bounds: { min, max }, windows })
    } catch (error) {
      // A stored schedule that no longer evaluates (e.g. a time zone dropped from the runtime's ICU data).
      fail(target, error)
    }
  }

  const apply = async ({ target, bounds, windows }: (typeof changes)[number]) => {
    const event = { target, at: deps.now, from: target.applied, to: bounds, windows }
    try {
      await deps.setBounds(target, bounds)
    } catch (error) {
      fail(target, error)
      // Best effort: the failure is already counted and reported in the result.
      await deps.recordEvent({ ...event, outcome: 'failed', error: message(error) }).catch(() => {})
      return
    }
    try {
      await deps.recordEvent({ ...event, outcome: 'applied' })
      result.changed++
    } catch (error) {
      fail(target, error)
    }
  }
  let next = 0
  const workers = Array.from({ length: Math.min(deps.concurrency ?? DEFAULT_TICK_CONCURRENCY, changes.length) }, async () => {
    while (next < changes.length) await apply(changes[next++] as (typeof changes)[number])
  })
  await Promise.all(workers)
  return result
}

export interface SchedulerOptions<T extends ScalingTarget> {
  /** Where the lease lives. */
  db: Executor
  /** This replica's identity in the lease (host name + process id, for instance). */
  holder: string
  /**
   * How long the lease outlives the last tick. Longer than the tick interval, so the leader keeps it
   * from tick to tick, and longer than a tick takes, so no one takes it over mid-tick.
   */
  leaseTtlMs: number
  leaseName?: string
  clock?: () => Date
  deps: Omit<TickDeps<T>, 'now'>
}

export type SchedulerTick = { ran: true; result: TickResult } | { ran: false; reason: 'lease_held_elsewhere' }

export const SCALING_LEASE = 'scaling-scheduler'

/** Runs the tick only while holding the lease: the first replica to take it leads until it stops renewing. */
export class Scheduler<T extends ScalingTarget = ScalingTarget> {
  constructor(private readonly options: SchedulerOptions<T>) {}

  private get leaseName() {
    return this.options.leaseName ?? SCALING_LEASE
  }

  async tick(): Promise<SchedulerTick> {
    const now = (this.options.clock ?? (() => new Date()))()
    const held = await tryAcquire(this.options.db, this.leaseName, this.options.holder, this.options.leaseTtlMs, now)
    if (!held) return { ran: false, reason: 'lease_held_elsewhere' }
    return { ran: true, result: await runTick({ ...this.options.deps, now }) }
  }

  /** On shutdown: another replica can lead at its next tick instead of after the expiry. */
  async stop(): Promise<void> {
    await release(this.options.db, this.leaseName, this.options.holder)
  }
}
