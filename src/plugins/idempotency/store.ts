/**
 * Persistence of idempotency keys (the plugin's service). The rules — when a claim is dead, when its
 * key may run again — are explained in ./index.ts; each step here is one conditional statement, so
 * concurrent requests on other connections or replicas cannot both win (an UPDATE or DELETE re-reads
 * the locked row before applying its WHERE; an INSERT of a taken key fails on the unique index).
 * Times come from the caller's clock, like every timestamp the app writes (see src/lib/lease.ts).
 */
import { and, asc, eq, gte, isNull, lt, or } from 'drizzle-orm'
import { affectedRows, type Db } from '../../db/client'
import { auditLog, idempotencyKeys } from '../../db/schema'
import { isDuplicateKey } from '../../lib/errors'

export type Claim =
  | { kind: 'claimed'; id: number }
  | { kind: 'replay'; statusCode: number; body: string; contentType: string }
  | { kind: 'in_progress' }
  /** The change was applied (or may have been) and its answer was not stored: never run it again. */
  | { kind: 'answer_lost' }
  | { kind: 'mismatch' }

/** What a completed request answered, stored byte for byte. */
export interface StoredAnswer {
  statusCode: number
  body: string
  contentType: string
}

/** How often a running request renews its claim. */
export const HEARTBEAT_INTERVAL_MS = 10_000
/** A claim not renewed for this long belongs to a request that died (twelve missed heartbeats). */
export const DEAD_AFTER_MS = 120_000
/** Audit entries of a dead claim are looked for from a little before the claim (clocks of replicas differ). */
const AUDIT_LOOKBACK_MS = 60_000
/** Content type of answers stored before it was recorded (they were all JSON). */
export const LEGACY_CONTENT_TYPE = 'application/json'

export interface ClaimRequest {
  key: string
  actorTokenId: number
  method: string
  path: string
  requestHash: string
  ttlMs: number
  /** The claiming request's id, as its audit entries carry it; without one a dead claim is never run again. */
  requestId?: string
}

/**
 * Whether the request `requestId` committed a change: every mutation writes its success entry in the
 * transaction of the change (src/lib/audit-log.ts), so an entry means the change is there.
 */
async function committedAChange(db: Db, requestId: string, since: Date): Promise<boolean> {
  const [entry] = await db
    .select({ id: auditLog.id })
    .from(auditLog)
    .where(and(gte(auditLog.at, new Date(since.getTime() - AUDIT_LOOKBACK_MS)), eq(auditLog.requestId, requestId), eq(auditLog.outcome, 'success')))
    .limit(1)
  return entry !== undefined
}

export async function claimKey(db: Db, request: ClaimRequest, now = new Date(), deadAfterMs = DEAD_AFTER_MS): Promise<Claim> {
  for (let attempt = 0; attempt < 4; attempt++) {
    const [existing] = await db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.actorTokenId, request.actorTokenId), eq(idempotencyKeys.key, request.key)))
      .limit(1)
    if (existing) {
      if (existing.expiresAt <= now) {
        await db.delete(idempotencyKeys).where(eq(idempotencyKeys.id, existing.id))
        continue
      }
      if (existing.requestHash !== request.requestHash || existing.method !== request.method || existing.path !== request.path) {
        return { kind: 'mismatch' }
      }
      if (existing.state === 'done') {
        return { kind: 'replay', statusCode: existing.statusCode ?? 200, body: existing.responseBody ?? '', contentType: existing.contentType ?? LEGACY_CONTENT_TYPE }
      }
      if (existing.state === 'answer_lost') return { kind: 'answer_lost' }
      // In progress: its request is running as long as it renews the claim.
      const lastSign = existing.heartbeatAt ?? existing.createdAt
      if (now.getTime() - lastSign.getTime() < deadAfterMs) return { kind: 'in_progress' }
      // Dead. Every step below is conditional on the claim still being dead and in progress.
      const deadBefore = new Date(now.getTime() - deadAfterMs)
      const stillDead = and(
        eq(idempotencyKeys.id, existing.id),
        eq(idempotencyKeys.state, 'in_progress'),
        or(lt(idempotencyKeys.heartbeatAt, deadBefore), and(isNull(idempotencyKeys.heartbeatAt), lt(idempotencyKeys.createdAt, deadBefore))),
      )
      if (existing.requestId !== null && !(await committedAChange(db, existing.requestId, existing.createdAt))) {
        // It died before committing anything: running the request now is its first run.
        await db.delete(idempotencyKeys).where(stillDead)
      } else {
        // It died after committing (or cannot tell): its answer is lost, its change must not be repeated.
        await db.update(idempotencyKeys).set({ state: 'answer_lost' }).where(stillDead)
      }
      continue // read it again: claimed anew, answer_lost, or whatever another request made of it meanwhile
    }
    try {
      const [inserted] = await db
        .insert(idempotencyKeys)
        .values({
          key: request.key,
          actorTokenId: request.actorTokenId,
          method: request.method,
          path: request.path,
          requestHash: request.requestHash,
          state: 'in_progress',
          requestId: request.requestId ?? null,
          heartbeatAt: now,
          createdAt: now,
          expiresAt: new Date(now.getTime() + request.ttlMs),
        })
        .$returningId()
      return { kind: 'claimed', id: Number(inserted?.id) }
    } catch (error) {
      // Another request with the same key won the insert a moment ago.
      if (isDuplicateKey(error)) return { kind: 'in_progress' }
      throw error
    }
  }
  return { kind: 'in_progress' }
}

const inProgress = (id: number) => and(eq(idempotencyKeys.id, id), eq(idempotencyKeys.state, 'in_progress'))

/** Renews a running request's claim; false when it is no longer in progress (completed, released or taken over). */
export async function renewClaim(db: Db, id: number, now = new Date()): Promise<boolean> {
  return affectedRows(await db.update(idempotencyKeys).set({ heartbeatAt: now }).where(inProgress(id))) > 0
}

/** Stores the answer; false when the claim was no longer in progress (it was taken over as dead). */
export async function completeKey(db: Db, id: number, answer: StoredAnswer): Promise<boolean> {
  const updated = await db
    .update(idempotencyKeys)
    .set({ state: 'done', statusCode: answer.statusCode, responseBody: answer.body, contentType: answer.contentType })
    .where(inProgress(id))
  return affectedRows(updated) > 0
}

/** Records that the change was applied but its answer cannot be stored: retries are refused, never run. */
export async function markAnswerLost(db: Db, id: number, statusCode: number): Promise<boolean> {
  return affectedRows(await db.update(idempotencyKeys).set({ state: 'answer_lost', statusCode }).where(inProgress(id))) > 0
}

/** Gives up a failed request's claim, so that its retry really runs. */
export async function releaseKey(db: Db, id: number) {
  await db.delete(idempotencyKeys).where(inProgress(id))
}

export interface PurgeOptions {
  now?: Date
  /** Rows per DELETE: each statement commits on its own, so no lock is held for long. */
  batchSize?: number
  /** At most this many statements per call; the rest waits for the next call. */
  maxBatches?: number
}

/** Deletes expired keys in batches (DELETE … ORDER BY expires_at LIMIT n, on the expiry index); answers how many. */
export async function purgeExpiredKeys(db: Db, options: PurgeOptions = {}): Promise<{ deleted: number; batches: number }> {
  const { now = new Date(), batchSize = 1_000, maxBatches = 100 } = options
  let deleted = 0
  let batches = 0
  while (batches < maxBatches) {
    const result = await db
      .delete(idempotencyKeys)
      .where(lt(idempotencyKeys.expiresAt, now))
      .orderBy(asc(idempotencyKeys.expiresAt), asc(idempotencyKeys.id))
      .limit(batchSize)
    const count = affectedRows(result)
    batches++
    deleted += count
    if (count < batchSize) break
  }
  return { deleted, batches }
}
