/**
 * One change in flight per (serve, environment), enforced by the database so that it holds across
 * replicas: the lock row's primary key refuses a second holder. A deploy's lock is released by
 * whoever ends its rollout (the tracker, on any replica); a holder that died is taken over once
 * the lock has expired (rollout deadline + a margin).
 */
import { and, eq, lt } from 'drizzle-orm'
import { affectedRows, type Executor } from '../../db/client'
import { type ChangeOperation, changeLocks, deployments } from '../../db/schema'
import { AppError, isDuplicateKey } from '../../lib/errors'

export interface LockKey {
  serveId: number
  environmentId: number
}

export async function acquireChangeLock(
  db: Executor,
  key: LockKey,
  change: { operation: ChangeOperation; requestId: string; ttlMs: number },
  now = new Date(),
): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await db.insert(changeLocks).values({
        ...key,
        operation: change.operation,
        requestId: change.requestId,
        acquiredAt: now,
        expiresAt: new Date(now.getTime() + change.ttlMs),
      })
      return
    } catch (error) {
      if (!isDuplicateKey(error)) throw error
    }
    // Held: take it over only when its holder is long gone.
    const where = and(eq(changeLocks.serveId, key.serveId), eq(changeLocks.environmentId, key.environmentId))
    const expired = await db.delete(changeLocks).where(and(where, lt(changeLocks.expiresAt, now)))
    if (affectedRows(expired) > 0) continue
    const [held] = await db
      .select({ operation: changeLocks.operation, revision: deployments.revision, since: changeLocks.acquiredAt })
      .from(changeLocks)
      .leftJoin(deployments, eq(deployments.id, changeLocks.deploymentId))
      .where(where)
      .limit(1)
    if (!held) continue // released between our insert and our look: try once more
    const what = held.revision ? `A ${held.operation} (revision ${held.revision})` : `An ${held.operation}`
    throw new AppError(409, 'CHANGE_IN_PROGRESS', `${what} of this serve in this environment is in progress since ${held.since.toISOString()}; retry when it ends`)
  }
  throw new AppError(409, 'CHANGE_IN_PROGRESS', 'Another change of this serve in this environment is in progress; retry when it ends')
}

export async function attachDeployment(db: Executor, key: LockKey, deploymentId: number) {
  await db
    .update(changeLocks)
    .set({ deploymentId })
    .where(and(eq(changeLocks.serveId, key.serveId), eq(changeLocks.environmentId, key.environmentId)))
}

export async function releaseChangeLock(db: Executor, key: LockKey, deploymentId?: number) {
  const where = and(eq(changeLocks.serveId, key.serveId), eq(changeLocks.environmentId, key.environmentId))
  await db.delete(changeLocks).where(deploymentId === undefined ? where : and(where, eq(changeLocks.deploymentId, deploymentId)))
}
