/**
 * The scaling tick wired to the database and the clusters: targets are the (serve, env) pairs with a
 * schedule and an active revision, bounds go through the environment's cluster driver (and are
 * recorded as applied by the placement module), and every change is a scaling event. Level-triggered:
 * one path for every change; tombstones (deleted schedules whose window bounds were live) are removed
 * once the base bounds hold again.
 */
import { hostname } from 'node:os'
import { and, eq, isNotNull, sql } from 'drizzle-orm'
import type { ClusterDrivers, ClusterTarget } from '../../cluster'
import { clusterTargetOf } from '../../cluster/driver'
import type { AppContext } from '../../context'
import type { Executor } from '../../db/client'
import { environments, scalingEvents, scalingSchedules, serves } from '../../db/schema'
import { describeError } from '../../lib/logger'
import { placementSql, recordAppliedBounds } from '../placement/service'
import { type ScalingTarget, Scheduler, type SchedulerTick } from './scheduler'
import { appliedOf, scheduleOf } from './service'

/** A scheduled (serve, env) with an active deployment, and where it runs. */
export interface DeployedTarget extends ScalingTarget {
  serveId: number
  environmentId: number
  cluster: ClusterTarget
}

const scheduledPlacement = placementSql(scalingSchedules.serveId, scalingSchedules.environmentId)

/** Every (serve, env) with a schedule (or a tombstone) and an active deployment, with its base and applied bounds. */
export async function listScalingTargets(db: Executor): Promise<DeployedTarget[]> {
  const rows = await db
    .select({ schedule: scalingSchedules, serveName: serves.name, environment: environments, min: scheduledPlacement.baseMin, max: scheduledPlacement.baseMax })
    .from(scalingSchedules)
    .innerJoin(serves, eq(serves.id, scalingSchedules.serveId))
    .innerJoin(environments, eq(environments.id, scalingSchedules.environmentId))
    .where(and(isNotNull(scheduledPlacement.baseMin), isNotNull(scheduledPlacement.baseMax), scheduledPlacement.hasActiveRevision))
    .orderBy(scalingSchedules.id)
  return rows.map(({ schedule, serveName, environment, min, max }) => {
    const base = { min: min ?? 0, max: max ?? 0 }
    return {
      serve: serveName,
      env: environment.name,
      serveId: schedule.serveId,
      environmentId: schedule.environmentId,
      schedule: scheduleOf(schedule),
      base,
      applied: appliedOf(schedule) ?? base,
      cluster: clusterTargetOf(serveName, environment),
    }
  })
}

/**
 * Drops the tombstones with nothing left to undo: the base bounds hold (or were never changed), or
 * the serve is no longer deployed. One statement, so a PUT that brings windows back is never lost.
 */
async function purgeSettledTombstones(db: Executor): Promise<void> {
  await db.execute(sql`
    delete from ${scalingSchedules}
    where json_length(${scalingSchedules.windows}) = 0
      and (${scalingSchedules.appliedMin} is null
        or (${scalingSchedules.appliedMin} = ${scheduledPlacement.baseMin} and ${scalingSchedules.appliedMax} = ${scheduledPlacement.baseMax})
        or not ${scheduledPlacement.hasActiveRevision})`)
}

export interface ScalingScheduler {
  /** One tick through the lease; a call while a tick runs in this process joins it. */
  tick(): Promise<SchedulerTick>
  /** Waits for a tick in progress, then releases the lease. */
  stop(): Promise<void>
}

export interface ScalingSchedulerOptions {
  /** This replica's name in the lease; default host name, process id and a random suffix. */
  holder?: string
  clock?: () => Date
  leaseName?: string
}

/** The tick of this process, on the database and the environments' cluster drivers. */
export function createScalingScheduler(
  { config, database, log }: Pick<AppContext, 'config' | 'database' | 'log'>,
  drivers: ClusterDrivers,
  options: ScalingSchedulerOptions = {},
): ScalingScheduler {
  const db = database.db
  const scheduler = new Scheduler<DeployedTarget>({
    db,
    holder: options.holder ?? `${hostname()}-${process.pid}-${crypto.randomUUID().slice(0, 8)}`,
    leaseTtlMs: config.scaling.leaseTtlMs,
    ...(options.leaseName === undefined ? {} : { leaseName: options.leaseName }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    deps: {
      listTargets: () => listScalingTargets(db),
      setBounds: async (target, bounds) => {
        await drivers.for(target.cluster).setAutoscalingBounds(target.cluster, bounds)
        await recordAppliedBounds(db, { serveId: target.serveId, environmentId: target.environmentId }, bounds)
      },
      recordEvent: async (event) => {
        await db.insert(scalingEvents).values({
          serveId: event.target.serveId,
          environmentId: event.target.environmentId,
          at: event.at,
          fromMin: event.from.min,
          fromMax: event.from.max,
          toMin: event.to.min,
          toMax: event.to.max,
          windows: event.windows,
          outcome: event.outcome,
          error: event.error?.slice(0, 2048) ?? null,
        })
      },
    },
  })
  let running: Promise<SchedulerTick> | undefined

  const tickOnce = async (): Promise<SchedulerTick> => {
    const tick = await scheduler.tick()
    if (!tick.ran) return tick
    await purgeSettledTombstones(db)
    const { failures, ...counts } = tick.result
    if (counts.changed > 0 || counts.failed > 0) log.info('scaling tick', { ...counts })
    for (const failure of failures) log.warn('scaling bounds not applied', { ...failure })
    return tick
  }

  return {
    tick: () => {
      running ??= tickOnce().finally(() => {
        running = undefined
      })
      return running
    },
    stop: async () => {
      await running?.catch((error: unknown) => log.warn('scaling tick failed', describeError(error)))
      await scheduler.stop()
    },
  }
}
