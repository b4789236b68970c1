/**
 * Scaling schedules in the database: PUT, GET, DELETE, the preview and the events (the tick that
 * applies them is worker.ts).
 *
 * A PUT does not touch the cluster: the next tick applies the new bounds (level-triggered, one path
 * for every change). A DELETE of a schedule whose window bounds are live keeps the row with no
 * windows (a tombstone, invisible to the API) so that the next tick can set the base bounds back;
 * the tick removes tombstones once the base bounds hold.
 */
import { and, count, desc, eq } from 'drizzle-orm'
import type { Db, Executor } from '../../db/client'
import { type EnvironmentRow, environments, type ScalingWindowRow, scalingEvents, scalingSchedules, type ServeRow } from '../../db/schema'
import { AppError, fieldPath, invalid } from '../../lib/errors'
import { type Page, type PageRequest, pageWindow } from '../../lib/pagination'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { findEnvironment } from '../environment/service'
import { activeRevisionBounds, baseReplicaBounds, hasActiveRevision } from '../placement/service'
import { findServe } from '../serve/service'
import type { ScalingModel } from './model'
import { effectiveBounds, type ReplicaBounds, type ScalingSchedule, timeline, validateSchedule } from './windows'

/** What a schedule's window may ask for (the infra config's own range is 0–100; an HPA needs ≥ 1). */
export const REPLICA_LIMITS = { minReplicas: 1, maxReplicas: 100 }
/** The longest preview: a month covers every monthly schedule and bounds the work per request. */
export const MAX_PREVIEW_DAYS = 31
const DAY = 86_400_000
const DEFAULT_PREVIEW_DAYS = 7

export type ScheduleRow = typeof scalingSchedules.$inferSelect

interface Scope {
  serve: ServeRow
  environment: EnvironmentRow
}

async function scopeOf(db: Db, serveName: string, envName: string): Promise<Scope> {
  const serve = await findServe(db, serveName)
  const environment = await findEnvironment(db, envName)
  return { serve, environment }
}

/** The infra config's min/max: 409 when there is none to scale (no infra config, or a workflow serve). */
async function baseBounds(db: Executor, { serve, environment }: Scope): Promise<ReplicaBounds> {
  if (serve.type === 'workflow') {
    throw new AppError(409, 'NOT_SCALABLE', `Serve ${serve.name} is a workflow serve: it has no replicas to schedule`)
  }
  const bounds = await baseReplicaBounds(db, { serveId: serve.id, environmentId: environment.id })
  if (!bounds) {
    throw new AppError(409, 'NO_INFRA_CONFIG', `Serve ${serve.name} has no infra config in environment ${environment.name}; create it first`)
  }
  return bounds
}

async function scheduleRow(db: Executor, serveId: number, environmentId: number): Promise<ScheduleRow | undefined> {
  const [row] = await db
    .select()
    .from(scalingSchedules)
    .where(and(eq(scalingSchedules.serveId, serveId), eq(scalingSchedules.environmentId, environmentId)))
    .limit(1)
  return row
}

const isTombstone = (row: ScheduleRow) => row.windows.length === 0
export const scheduleOf = (row: ScheduleRow): ScalingSchedule => ({ timezone: row.timezone, windows: row.windows })
export const appliedOf = (row: ScheduleRow): ReplicaBounds | null =>
  row.appliedMin === null || row.appliedMax === null ? null : { min: row.appliedMin, max: row.appliedMax }

async function findSchedule(db: Executor, scope: Scope): Promise<ScheduleRow> {
  const row = await scheduleRow(db, scope.serve.id, scope.environment.id)
  if (!row || isTombstone(row)) {
    throw new AppError(404, 'NOT_FOUND', `Serve ${scope.serve.name} has no scaling schedule in environment ${scope.environment.name}`)
  }
  return row
}

function toSchedule(row: ScheduleRow, scope: Scope, base: ReplicaBounds, now: Date): ScalingModel.Schedule {
  return {
    serve_name: scope.serve.name,
    env: scope.environment.name,
    timezone: row.timezone,
    windows: row.windows,
    base,
    effective: effectiveBounds(scheduleOf(row), base, now),
    applied: appliedOf(row),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

/** Only the fields given: a JSON column keeps what it is handed. */
function toWindowRow(window: ScalingModel.PutBody['windows'][number]): ScalingWindowRow {
  const { name, start, end, duration_minutes, min_replicas, max_replicas } = window
  return { name, start, ...(end === undefined ? {} : { end }), ...(duration_minutes === undefined ? {} : { duration_minutes }), min_replicas, max_replicas }
}

export async function getSchedule(db: Db, serveName: string, envName: string, now = new Date()): Promise<ScalingModel.Schedule> {
  const scope = await scopeOf(db, serveName, envName)
  const row = await findSchedule(db, scope)
  return toSchedule(row, scope, await baseBounds(db, scope), now)
}

/** Creates or replaces the schedule. The cluster is not touched: the next tick applies `effective`. */
export async function putSchedule(
  db: Db,
  audit: AuditContext,
  serveName: string,
  envName: string,
  body: ScalingModel.PutBody,
  now = new Date(),
): Promise<ScalingModel.Schedule> {
  const scope = await scopeOf(db, serveName, envName)
  const base = await baseBounds(db, scope)
  const errors = validateSchedule(body, REPLICA_LIMITS)
  if (errors.length > 0) throw invalid(errors, 'Invalid scaling schedule')
  const windows = body.windows.map(toWindowRow)
  await db.transaction(async (tx) => {
    // The applied bounds describe the cluster, which this does not change: kept on an existing row,
    // and on a new one what the active revision applied (a deploy records bounds only where a schedule exists).
    const applied = await activeRevisionBounds(tx, { serveId: scope.serve.id, environmentId: scope.environment.id })
    await tx
      .insert(scalingSchedules)
      .values({ serveId: scope.serve.id, environmentId: scope.environment.id, timezone: body.timezone, windows, appliedMin: applied?.min ?? null, appliedMax: applied?.max ?? null })
      .onDuplicateKeyUpdate({ set: { timezone: body.timezone, windows } })
    await recordAudit(tx, audit, { resourceType: 'serve', resourceName: scope.serve.name, statusCode: 200, summary: { env: scope.environment.name, scaling_schedule: body } })
  })
  return toSchedule(await findSchedule(db, scope), scope, base, now)
}

/** Removes the schedule; when window bounds are live, leaves a tombstone for the next tick to undo them. */
export async function deleteSchedule(db: Db, audit: AuditContext, serveName: string, envName: string): Promise<{ restorePending: boolean }> {
  const scope = await scopeOf(db, serveName, envName)
  const row = await findSchedule(db, scope)
  const applied = appliedOf(row)
  const base = await baseBounds(db, scope)
  const restorePending =
    applied !== null && (applied.min !== base.min || applied.max !== base.max) && (await hasActiveRevision(db, { serveId: scope.serve.id, environmentId: scope.environment.id }))
  await db.transaction(async (tx) => {
    if (restorePending) await tx.update(scalingSchedules).set({ windows: [] }).where(eq(scalingSchedules.id, row.id))
    else await tx.delete(scalingSchedules).where(eq(scalingSchedules.id, row.id))
    await recordAudit(tx, audit, {
      resourceType: 'serve',
      resourceName: scope.serve.name,
      statusCode: 200,
      summary: { env: scope.environment.name, scaling_schedule: null, restore_pending: restorePending },
    })
  })
  return { restorePending }
}

/** The timeline of effective bounds over [from, to]: from defaults to now, to to from + 7 days, at most 31 days. */
export async function previewSchedule(db: Db, serveName: string, envName: string, query: ScalingModel.PreviewQuery, now = new Date()) {
  const scope = await scopeOf(db, serveName, envName)
  const row = await findSchedule(db, scope)
  const base = await baseBounds(db, scope)
  const from = query.from === undefined ? now : new Date(query.from)
  const to = query.to === undefined ? new Date(from.getTime() + DEFAULT_PREVIEW_DAYS * DAY) : new Date(query.to)
  if (Number.isNaN(from.getTime())) throw invalid([{ path: fieldPath('query', '/from'), message: 'must be an ISO 8601 date-time' }])
  if (Number.isNaN(to.getTime())) throw invalid([{ path: fieldPath('query', '/to'), message: 'must be an ISO 8601 date-time' }])
  if (to <= from) throw invalid([{ path: fieldPath('query', '/to'), message: 'must be after from' }])
  if (to.getTime() - from.getTime() > MAX_PREVIEW_DAYS * DAY) {
    throw invalid([{ path: fieldPath('query', '/to'), message: `at most ${MAX_PREVIEW_DAYS} days after from` }])
  }
  return {
    from: from.toISOString(),
    to: to.toISOString(),
    base,
    timeline: timeline(scheduleOf(row), base, from, to).map((entry) => ({ ...entry, at: entry.at.toISOString() })),
  }
}

export async function listScalingEvents(db: Db, serveName: string, query: PageRequest & { env?: string }): Promise<Page<ScalingModel.Event>> {
  const serve = await findServe(db, serveName)
  const environment = query.env === undefined ? undefined : await findEnvironment(db, query.env)
  const { page, limit, offset } = pageWindow(query)
  const where = and(eq(scalingEvents.serveId, serve.id), environment ? eq(scalingEvents.environmentId, environment.id) : undefined)
  const [rows, [totals]] = await Promise.all([
    db
      .select({ event: scalingEvents, env: environments.name })
      .from(scalingEvents)
      .innerJoin(environments, eq(environments.id, scalingEvents.environmentId))
      .where(where)
      .orderBy(desc(scalingEvents.at), desc(scalingEvents.id))
      .limit(limit)
      .offset(offset),
    db.select({ total: count() }).from(scalingEvents).where(where),
  ])
  const items = rows.map(({ event, env }) => ({
    id: event.id,
    serve_name: serve.name,
    env,
    at: event.at.toISOString(),
    from: event.fromMin === null || event.fromMax === null ? null : { min: event.fromMin, max: event.fromMax },
    to: { min: event.toMin, max: event.toMax },
    windows: event.windows,
    outcome: event.outcome,
    error: event.error,
  }))
  return { items, total: totals?.total ?? 0, page, limit }
}

/**
 * The bounds a deploy of (serve, env) should render at `now`: the schedule's effective bounds over
 * `base` (the infra config's), or `base` itself when there is no schedule.
 */
export async function effectiveReplicaBounds(
  db: Executor,
  serveId: number,
  environmentId: number,
  base: { min: number; max: number },
  now: Date = new Date(),
): Promise<{ min: number; max: number; windows: string[] }> {
  const row = await scheduleRow(db, serveId, environmentId)
  return row ? effectiveBounds(scheduleOf(row), base, now) : { min: base.min, max: base.max, windows: [] }
}
