/**
 * Follows every rollout in flight (status `deploying`, on whichever replica started it) until it is
 * `active` or `failed` (the "rollout done" and "rollout failed" commands of the transition table).
 * A failed rollout is rolled back by itself unless its revision asked `"auto_rollback": false`: to the
 * active revision (a new `auto-rollback` revision), or, with nothing active, by removing its objects.
 * State lives in the database only, so a restart resumes where it was, and the conditional updates
 * make two replicas finishing the same rollout harmless. A revision left `pending` by a request that
 * died mid-apply is failed once the rollout deadline has passed, so its lock goes with it.
 */
import { and, eq, isNotNull, isNull, lt, ne } from 'drizzle-orm'
import { ClusterError, type RolloutStatus } from '../../cluster/driver'
import { affectedRows } from '../../db/client'
import { canaryRollouts, type DeploymentRow, deployments, environments, IN_FLIGHT_STATUSES, serves } from '../../db/schema'
import { recordAudit } from '../../lib/audit-log'
import { AppError } from '../../lib/errors'
import { createBackoff } from '../../lib/backoff'
import { describeError } from '../../lib/logger'
import { tickCanary } from './canary'
import { extendChangeLock, releaseChangeLock } from './locks'
import {
  AlreadyEnded,
  closeCanary,
  clusterReason,
  clusterTarget,
  failRevision,
  lockKey,
  type PlacementDeps,
  readPlacement,
  recordEvent,
  renderedNumber,
  type RevisionChange,
  rolloutLockTtlMs,
  startRevision,
  type Subject,
  TRACKER_ACTOR,
  trackerAudit,
} from './service'
import { TRANSITIONS } from './transitions'

/** Whether a failed rollout of this revision is rolled back by itself: unless it asked not to, or is itself an automatic rollback. */
export const rollsBackAutomatically = (row: DeploymentRow) => row.deploymentConfig.auto_rollback !== false && row.reason !== 'auto-rollback'

export interface TrackerOptions {
  intervalMs: number
  /** Renders a revision of a subject (the deployment module knows the scaling windows and settings): an automatic rollback needs it. */
  render: (subject: Subject) => RevisionChange['render']
}

export interface RolloutTracker {
  /** Checks each in-flight rollout once (or only `deploymentId`'s). */
  tick(deploymentId?: number): Promise<void>
  /** Follows one rollout until it ends or `timeoutMs` passes; answers its row as it then is. */
  settle(deploymentId: number, timeoutMs: number): Promise<DeploymentRow>
  start(): void
  stop(): Promise<void>
}

export function createRolloutTracker(deps: PlacementDeps, options: TrackerOptions): RolloutTracker {
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
      await closeCanary(tx, eq(deployments.id, id), 'promoted')
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
      if (await failRevision(tx, id, reason)) await recordEvent(tx, id, { kind: 'rollout-failed', actor: TRACKER_ACTOR.name, detail: reason })
      await closeCanary(tx, eq(deployments.id, id), 'aborted')
      await releaseChangeLock(tx, { serveId, environmentId }, id)
    })
  }

  /** The "rollout failed" command: fail it, and roll back or remove as the table says. */
  async function rolloutFailed(deployment: DeploymentRow, subject: Subject, reason: string) {
    const view = await readPlacement(db, lockKey(subject))
    if (view.inFlight?.id !== deployment.id) return // ended or interrupted meanwhile
    const outcome = TRANSITIONS[view.state][rollsBackAutomatically(deployment) ? 'rollout failed' : 'rollout failed, no auto-rollback']
    if (outcome === 'roll back' && view.active) return rollBack(deployment, subject, view.active, reason)
    if (outcome === 'fail+remove') return failAndRemove(deployment, subject, reason)
    return fail(deployment.id, subject.serve.id, subject.environment.id, reason)
  }

  /** Re-applies the active revision as a new `auto-rollback` revision; the failed one names it in `rolled_back_to`. */
  async function rollBack(failed: DeploymentRow, subject: Subject, active: DeploymentRow, reason: string) {
    try {
      const row = await startRevision(deps, trackerAudit('AUTO-ROLLBACK', failed.id), subject, {
        reason: 'auto-rollback',
        rolledBackFrom: active.revision,
        renderAs: await renderedNumber(db, subject.serve.id, active),
        inputs: { artifactVersion: active.artifactVersion, image: active.image, deploymentConfig: active.deploymentConfig, infraSnapshot: active.infraSnapshot },
        render: options.render(subject),
        storeInfra: true,
        replacesFailed: { deploymentId: failed.id, reason },
        summary: { failed_revision: failed.revision, failure_reason: reason },
      })
      log.warn('rollout failed; rolled back automatically', { serve: subject.serve.name, env: subject.environment.name, revision: failed.revision, reason, rolled_back_to: row.revision, restores: active.revision })
    } catch (error) {
      // Another replica, or a command of a user's, ended it meanwhile: nothing left to do here.
      if (error instanceof AlreadyEnded || (error instanceof AppError && error.code === 'CHANGE_IN_PROGRESS')) return
      // The rollback's own apply failed (502): it is recorded failed and the lock released; the failed revision stays as it is.
      if (error instanceof AppError) {
        log.warn('automatic rollback failed', { serve: subject.serve.name, env: subject.environment.name, revision: failed.revision, error: error.message })
        return
      }
      throw error
    }
  }

  /**
   * A first revision failed: nothing active to return to, so its objects are removed. It is marked
   * failed first, keeping the lock (a failed revision's lock cannot be preempted), so nothing is
   * applied meanwhile that the removal would take away.
   */
  async function failAndRemove(failed: DeploymentRow, subject: Subject, reason: string) {
    const key = lockKey(subject)
    const marked = await db.transaction(async (tx) => {
      if (!(await failRevision(tx, failed.id, reason))) return false
      await recordEvent(tx, failed.id, { kind: 'rollout-failed', actor: TRACKER_ACTOR.name, detail: reason })
      return true
    })
    if (!marked) return
    const target = clusterTarget(subject)
    let removed = true
    let removal = 'its objects were removed (nothing was active to return to)'
    try {
      await deps.drivers.for(target).remove(target)
    } catch (error) {
      removed = false
      removal = `removing its objects failed (${clusterReason(error)}); undeploy to retry`
      log.warn('removing a failed first rollout failed', { serve: subject.serve.name, env: subject.environment.name, revision: failed.revision, ...describeError(error) })
    }
    await db.transaction(async (tx) => {
      const now = new Date()
      if (removed) {
        await tx
          .update(deployments)
          .set({ removedAt: now })
          .where(and(eq(deployments.serveId, key.serveId), eq(deployments.environmentId, key.environmentId), isNotNull(deployments.appliedAt), isNull(deployments.removedAt)))
      }
      await recordEvent(tx, failed.id, { kind: 'removed', actor: TRACKER_ACTOR.name, detail: removal }, now)
      await recordAudit(tx, trackerAudit('AUTO-ROLLBACK', failed.id), {
        resourceType: 'serve',
        resourceName: subject.serve.name,
        statusCode: 200,
        outcome: removed ? 'success' : 'failure',
        summary: { env: subject.environment.name, failed_revision: failed.revision, failure_reason: reason, removed },
      })
      await releaseChangeLock(tx, key, failed.id)
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
      .select({ deployment: deployments, serve: serves, environment: environments, canary: canaryRollouts })
      .from(deployments)
      .innerJoin(serves, eq(serves.id, deployments.serveId))
      .innerJoin(environments, eq(environments.id, deployments.environmentId))
      .leftJoin(canaryRollouts, eq(canaryRollouts.deploymentId, deployments.id))
      .where(and(...conditions))
    await Promise.all(
      inFlight.map(async ({ deployment, serve, environment, canary }) => {
        const target = clusterTarget({ serve, environment })
        const subject = { serve, environment }
        if (canary?.phase === 'stepping') {
          // A canary has no overall deadline (each step has ready_timeout_seconds): its lock lives while it is followed.
          try {
            await extendChangeLock(db, lockKey(subject), deployment.id, rolloutLockTtlMs(deps.config))
            await tickCanary(deps, subject, deployment, rollsBackAutomatically(deployment))
          } catch (error) {
            log.warn('canary step not taken; retried at the next tick', { serve: serve.name, env: environment.name, revision: deployment.revision, ...describeError(error) })
          }
          return
        }
        // A promoted canary's rollout is timed from its promotion.
        const startedAt = canary?.phase === 'promoting' ? canary.stepStartedAt : deployment.createdAt
        const overdue = Date.now() - startedAt.getTime() > deps.config.rollout.deadlineSeconds * 1000
        let status: RolloutStatus
        try {
          status = await deps.drivers.for(target).status(target)
        } catch (error) {
          // A cluster that cannot be read now is asked again next time, until the deadline.
          if (overdue) {
            const reason = error instanceof ClusterError ? `${error.kind}: ${error.message}` : 'the cluster could not be read'
            return rolloutFailed(deployment, subject, `ProgressDeadlineExceeded: status unknown (${reason})`)
          }
          log.warn('rollout status unavailable', { serve: serve.name, env: environment.name, revision: deployment.revision, ...describeError(error) })
          return
        }
        if (status.phase === 'complete') return activate(deployment.id, serve.id, environment.id)
        if (status.phase === 'failed') return rolloutFailed(deployment, subject, status.failureReason ?? 'the rollout failed')
        if (overdue) {
          const why = status.failureReason ? `: ${status.failureReason}` : ''
          return rolloutFailed(deployment, subject, `ProgressDeadlineExceeded: not rolled out within ${deps.config.rollout.deadlineSeconds}s${why}`)
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
