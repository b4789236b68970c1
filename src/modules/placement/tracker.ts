/**
 * Follows every rollout in flight (status `deploying`, on whichever replica started it) until it is
 * `active` or `failed` (the "rollout done" and "rollout failed" commands of the transition table).
 * State lives in the database only, so a restart resumes where it was, and the conditional updates
 * make two replicas finishing the same rollout harmless. A revision left `pending` by a request that
 * died mid-apply is failed once the rollout deadline has passed, so its lock goes with it.
 */
import { and, eq, inArray, lt, ne } from 'drizzle-orm'
import { ClusterError } from '../../cluster/driver'
import { affectedRows, type Executor } from '../../db/client'
import { type DeploymentRow, deployments, environments, IN_FLIGHT_STATUSES, serves } from '../../db/schema'
import { createBackoff } from '../../lib/backoff'
import { describeError } from '../../lib/logger'
import { releaseChangeLock } from './locks'
import { clusterTarget, type PlacementDeps } from './service'

/** Marks an in-flight revision failed (a no-op once it has ended). */
async function failRevision(db: Executor, id: number, reason: string) {
  await db
    .update(deployments)
    .set({ status: 'failed', failureReason: reason.slice(0, 2048), endedAt: new Date() })
    .where(and(eq(deployments.id, id), inArray(deployments.status, [...IN_FLIGHT_STATUSES])))
}

export interface RolloutTracker {
  /** Checks each in-flight rollout once (or only `deploymentId`'s). */
  tick(deploymentId?: number): Promise<void>
  /** Follows one rollout until it ends or `timeoutMs` passes; answers its row as it then is. */
  settle(deploymentId: number, timeoutMs: number): Promise<DeploymentRow>
  start(): void
  stop(): Promise<void>
}

export function createRolloutTracker(deps: PlacementDeps, options: { intervalMs: number }): RolloutTracker {
  const { db, log } = deps
  let timer: ReturnType<typeof setInterval> | undefined
  let running: Promise<void> | undefined
  const backoff = createBackoff({ baseMs: options.intervalMs, maxMs: 60_000 })

  async function activate(id: number, serveId: number, environmentId: number) {
    const now = new Date()
    await db.transaction(async (tx) => {
      const promoted = await tx
        .update(deployments)
        .set({ status: 'active', activatedAt: now })
        .where(and(eq(deployments.id, id), eq(deployments.status, 'deploying')))
      if (affectedRows(promoted) === 0) return // another replica finished it first
      // Only now does the previous active revision step aside.
      await tx
        .update(deployments)
        .set({ status: 'superseded', endedAt: now })
        .where(and(eq(deployments.serveId, serveId), eq(deployments.environmentId, environmentId), eq(deployments.status, 'active'), ne(deployments.id, id)))
      await releaseChangeLock(tx, { serveId, environmentId }, id)
    })
  }

  async function fail(id: number, serveId: number, environmentId: number, reason: string) {
    await db.transaction(async (tx) => {
      await failRevision(tx, id, reason)
      await releaseChangeLock(tx, { serveId, environmentId }, id)
    })
  }

  /** Revisions a dead request left `pending` past the deadline: nobody will apply them now. */
  async function failAbandoned() {
    const before = new Date(Date.now() - deps.config.rollout.deadlineSeconds * 1000)
    const abandoned = await db.select().from(deployments).where(and(eq(deployments.status, 'pending'), lt(deployments.createdAt, before)))
    for (const row of abandoned) {
      await fail(row.id, row.serveId, row.environmentId, 'the request applying this revision ended before the apply did')
    }
  }

  async function tick(deploymentId?: number) {
    if (deploymentId === undefined) await failAbandoned()
    const conditions = [eq(deployments.status, 'deploying')]
    if (deploymentId !== undefined) conditions.push(eq(deployments.id, deploymentId))
    const inFlight = await db
      .select({ deployment: deployments, serve: serves, environment: environments })
      .from(deployments)
      .innerJoin(serves, eq(serves.id, deployments.serveId))
      .innerJoin(environments, eq(environments.id, deployments.environmentId))
      .where(and(...conditions))
    await Promise.all(
      inFlight.map(async ({ deployment, serve, environment }) => {
        const target = clusterTarget({ serve, environment })
        const overdue = Date.now() - deployment.createdAt.getTime() > deps.config.rollout.deadlineSeconds * 1000
        try {
          const status = await deps.drivers.for(target).status(target)
          if (status.phase === 'complete') return activate(deployment.id, serve.id, environment.id)
          if (status.phase === 'failed') return fail(deployment.id, serve.id, environment.id, status.failureReason ?? 'the rollout failed')
          if (overdue) {
            const why = status.failureReason ? `: ${status.failureReason}` : ''
            return fail(deployment.id, serve.id, environment.id, `ProgressDeadlineExceeded: not rolled out within ${deps.config.rollout.deadlineSeconds}s${why}`)
          }
        } catch (error) {
          // A cluster that cannot be read now is asked again next time, until the deadline.
          if (overdue) {
            const reason = error instanceof ClusterError ? `${error.kind}: ${error.message}` : 'the cluster could not be read'
            return fail(deployment.id, serve.id, environment.id, `ProgressDeadlineExceeded: status unknown (${reason})`)
          }
          log.warn('rollout status unavailable', { serve: serve.name, env: environment.name, revision: deployment.revision, ...describeError(error) })
        }
      }),
    )
  }

  async function settle(deploymentId: number, timeoutMs: number): Promise<DeploymentRow> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      await tick(deploymentId)
      const [row] = await db.select().from(deployments).where(eq(deployments.id, deploymentId)).limit(1)
      if (!row) throw new Error(`deployment ${deploymentId} vanished`)
      const settled = !(IN_FLIGHT_STATUSES as readonly string[]).includes(row.status)
      if (settled || Date.now() >= deadline) return row
      await Bun.sleep(Math.min(options.intervalMs, Math.max(0, deadline - Date.now())))
    }
  }

  return {
    tick,
    settle,
    start() {
      if (timer) return
      const run = () => {
        if (running || !backoff.ready()) return
        running = tick()
          .then(() => backoff.succeeded())
          .catch((error) => log.warn('rollout tracking failed; backing off', { retry_in_ms: backoff.failed(), ...describeError(error) }))
          .finally(() => {
            running = undefined
          })
      }
      run() // rollouts left in flight by a previous process are picked up at once
      timer = setInterval(run, options.intervalMs)
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = undefined
      await running
    },
  }
}
