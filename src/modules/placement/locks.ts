/**
 * One change at a time per (serve, environment), enforced by the database so that it holds across
 * replicas: the lock row's primary key refuses a second holder. A rollout's lock is released by
 * whoever ends it (the tracker, on any replica), in the transaction that records the end; a holder
 * that died is taken over once the lock has expired (rollout deadline + a margin).
 *
 * Preemption: a command that may interrupt a rollout (rollback, undeploy, infra change) takes the lock
 * over from a rollout that is only being watched (`deploying`: its objects are applied). It is never
 * taken from a request that is applying (`pending`) or removing (an undeploy): those end within a
 * request's time, so the caller gets 409 and retries.
 */
import { and, eq, isNull, lt, or } from 'drizzle-orm'
import { affectedRows, type Db, type Executor } from '../../db/client'
import { type CanaryRolloutRow, canaryRollouts, type ChangeOperation, changeLocks, deployments } from '../../db/schema'
import { AppError, isDuplicateKey } from '../../lib/errors'

export interface LockKey {
  serveId: number
  environmentId: number
}

export interface LockRequest {
  operation: ChangeOperation
  requestId: string
  ttlMs: number
  /** Take the lock over from a rollout that is only being watched. */
  preempt: boolean
}

/** What the lock was taken from: the rollout it interrupts, if any. */
export interface Acquired {
  preempted?: { deploymentId: number; revision: number; operation: ChangeOperation }
}

const keyOf = (key: LockKey) => and(eq(changeLocks.serveId, key.serveId), eq(changeLocks.environmentId, key.environmentId))

export async function acquireChangeLock(db: Executor, key: LockKey, request: LockRequest, now = new Date()): Promise<Acquired> {
  const row = { ...key, operation: request.operation, requestId: request.requestId, acquiredAt: now, expiresAt: new Date(now.getTime() + request.ttlMs), deploymentId: null }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await db.insert(changeLocks).values(row)
      return {}
    } catch (error) {
      if (!isDuplicateKey(error)) throw error
    }
    // Held: take it over when its holder is long gone, or (preempting) when it is a rollout being watched.
    const expired = await db.delete(changeLocks).where(and(keyOf(key), lt(changeLocks.expiresAt, now)))
    if (affectedRows(expired) > 0) continue
    const [held] = await db
      .select({ operation: changeLocks.operation, deploymentId: changeLocks.deploymentId, revision: deployments.revision, status: deployments.status, since: changeLocks.acquiredAt })
      .from(changeLocks)
      .leftJoin(deployments, eq(deployments.id, changeLocks.deploymentId))
      .where(keyOf(key))
      .limit(1)
      .for('update')
    if (!held) continue // released between our insert and our look: try once more
    if (request.preempt && held.deploymentId !== null && held.status === 'deploying' && held.revision !== null) {
      await db.update(changeLocks).set(row).where(keyOf(key))
      return { preempted: { deploymentId: held.deploymentId, revision: held.revision, operation: held.operation } }
    }
    const what = held.revision ? `A ${held.operation} (revision ${held.revision}, ${held.status === 'pending' ? 'being applied' : 'rolling out'})` : `An ${held.operation}`
    throw new AppError(409, 'CHANGE_IN_PROGRESS', `${what} of this serve in this environment is in progress since ${held.since.toISOString()}; retry when it ends`)
  }
  throw new AppError(409, 'CHANGE_IN_PROGRESS', 'Another change of this serve in this environment is in progress; retry when it ends')
}

export async function attachDeployment(db: Executor, key: LockKey, deploymentId: number) {
  await db.update(changeLocks).set({ deploymentId }).where(keyOf(key))
}

/** Keeps a long rollout's lock (a canary stepping for longer than the rollout deadline) from expiring while it is followed. */
export async function extendChangeLock(db: Executor, key: LockKey, deploymentId: number, ttlMs: number, now = new Date()) {
  await db
    .update(changeLocks)
    .set({ expiresAt: new Date(now.getTime() + ttlMs) })
    .where(and(keyOf(key), eq(changeLocks.deploymentId, deploymentId)))
}

/** Releases the lock; with `deploymentId`, only while that rollout still holds it (not after a preemption). */
export async function releaseChangeLock(db: Executor, key: LockKey, deploymentId?: number) {
  await db.delete(changeLocks).where(deploymentId === undefined ? keyOf(key) : and(keyOf(key), eq(changeLocks.deploymentId, deploymentId)))
}

/**
 * Gives the lock back to a rollout that a failed command had preempted: nothing changed, so the
 * tracker follows and releases it as before.
 */
export async function handBackChangeLock(db: Executor, key: LockKey, to: { deploymentId: number; operation: ChangeOperation }) {
  await db.update(changeLocks).set({ deploymentId: to.deploymentId, operation: to.operation }).where(keyOf(key))
}

/** Releases the lock a request holds (an undeploy, or a change that refused before recording a revision). */
export async function releaseRequestLock(db: Executor, key: LockKey, requestId: string) {
  await db.delete(changeLocks).where(and(keyOf(key), eq(changeLocks.requestId, requestId)))
}

/** Longer than any change of a canary takes (a few cluster calls, each bounded): a holder that died frees it after this. */
const CANARY_LEASE_MS = 60_000

export type LeaseOutcome<T> = { kind: 'done'; value: T } | { kind: 'busy' } | { kind: 'ended' }

/**
 * Runs `work` on a stepping canary's row as it now is, holding the canary's lease: one actor at a
 * time changes a canary — the trackers of two replicas, a tick and a promote or abort, an undeploy —
 * so that, e.g., a step's full apply cannot race a rollback or a removal and leave the cluster running
 * what the database calls ended. `busy`: another actor holds it; `ended`: the canary steps no more.
 */
export async function underCanaryLease<T>(db: Db, deploymentId: number, work: (canary: CanaryRolloutRow) => Promise<T>): Promise<LeaseOutcome<T>> {
  const now = new Date()
  const until = new Date(now.getTime() + CANARY_LEASE_MS)
  const claimed = await db
    .update(canaryRollouts)
    .set({ leaseUntil: until })
    .where(and(eq(canaryRollouts.deploymentId, deploymentId), or(isNull(canaryRollouts.leaseUntil), lt(canaryRollouts.leaseUntil, now))))
  if (affectedRows(claimed) === 0) return { kind: 'busy' }
  try {
    const [canary] = await db.select().from(canaryRollouts).where(eq(canaryRollouts.deploymentId, deploymentId)).limit(1)
    if (!canary || canary.phase !== 'stepping') return { kind: 'ended' }
    return { kind: 'done', value: await work(canary) }
  } finally {
    await db
      .update(canaryRollouts)
      .set({ leaseUntil: null })
      .where(and(eq(canaryRollouts.deploymentId, deploymentId), eq(canaryRollouts.leaseUntil, until)))
  }
}
