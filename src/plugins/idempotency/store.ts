/** Persistence of idempotency keys (the plugin's service). */
import { and, eq, lt } from 'drizzle-orm'
import type { Db } from '../../db/client'
import { idempotencyKeys } from '../../db/schema'
import { isDuplicateKey } from '../../lib/errors'

export type Claim =
  | { kind: 'claimed'; id: number }
  | { kind: 'replay'; statusCode: number; body: string }
  | { kind: 'in_progress' }
  | { kind: 'mismatch' }

/** An in-progress claim older than this is taken to belong to a request that died, and is released. */
export const ABANDONED_AFTER_MS = 5 * 60_000

export async function claimKey(
  db: Db,
  request: { key: string; actorTokenId: number; method: string; path: string; requestHash: string; ttlMs: number },
  now = new Date(),
): Promise<Claim> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const [existing] = await db
      .select()
      .from(idempotencyKeys)
      .where(and(eq(idempotencyKeys.actorTokenId, request.actorTokenId), eq(idempotencyKeys.key, request.key)))
      .limit(1)
    if (existing) {
      const abandoned = existing.state === 'in_progress' && now.getTime() - existing.createdAt.getTime() > ABANDONED_AFTER_MS
      if (existing.expiresAt <= now || abandoned) {
        await db.delete(idempotencyKeys).where(eq(idempotencyKeys.id, existing.id))
        continue
      }
      if (existing.requestHash !== request.requestHash || existing.method !== request.method || existing.path !== request.path) {
        return { kind: 'mismatch' }
      }
      if (existing.state === 'in_progress') return { kind: 'in_progress' }
      return { kind: 'replay', statusCode: existing.statusCode ?? 200, body: existing.responseBody ?? '' }
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

export async function completeKey(db: Db, id: number, statusCode: number, body: string) {
  await db.update(idempotencyKeys).set({ state: 'done', statusCode, responseBody: body }).where(eq(idempotencyKeys.id, id))
}

export async function releaseKey(db: Db, id: number) {
  await db.delete(idempotencyKeys).where(eq(idempotencyKeys.id, id))
}

export async function purgeExpiredKeys(db: Db, now = new Date()) {
  await db.delete(idempotencyKeys).where(lt(idempotencyKeys.expiresAt, now))
}
