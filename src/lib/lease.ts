/**
 * Database leases: at most one holder per name at a time, taken over when the holder stops renewing
 * (it died). Each step is one atomic statement, so concurrent callers on different connections or
 * replicas cannot both win: an UPDATE re-reads the locked row before applying its WHERE, and an
 * INSERT of an existing name fails on the primary key.
 *
 * Times come from the caller's clock (`now`), like every timestamp the app writes: replicas' clocks
 * must agree to well within the TTL, which is what NTP gives and why TTLs are tens of seconds.
 */
import { and, eq, sql } from 'drizzle-orm'
import { affectedRows, type Executor } from '../db/client'
import { leases } from '../db/schema'
import { isDuplicateKey } from './errors'

/**
 * Takes the lease `name` for `holder` until now + ttlMs, or renews it when `holder` has it already.
 * True when `holder` holds it afterwards; false while someone else holds an unexpired lease.
 */
export async function tryAcquire(db: Executor, name: string, holder: string, ttlMs: number, now = new Date()): Promise<boolean> {
  const expiresAt = new Date(now.getTime() + ttlMs)
  const at = (date: Date) => sql.param(date, leases.renewedAt)
  // Renewal, or takeover of an expired lease. Raw SQL because MySQL applies SET assignments left to
  // right: acquired_at must be decided before holder is overwritten (drizzle orders them by column).
  // mysql2 counts matched rows (FOUND_ROWS); drivers counting changed rows see renewed_at move.
  const updated = await db.execute(sql`
    update ${leases}
    set ${leases.acquiredAt} = if(${leases.holder} = ${holder}, ${leases.acquiredAt}, ${at(now)}),
        ${leases.holder} = ${holder},
        ${leases.expiresAt} = ${at(expiresAt)},
        ${leases.renewedAt} = ${at(now)}
    where ${leases.name} = ${name} and (${leases.holder} = ${holder} or ${leases.expiresAt} <= ${at(now)})`)
  if (affectedRows(updated) > 0) return true
  try {
    await db.insert(leases).values({ name, holder, expiresAt, acquiredAt: now, renewedAt: now })
    return true
  } catch (error) {
    // The row exists and is someone else's (or another caller inserted it a moment ago).
    if (isDuplicateKey(error)) return false
    throw error
  }
}

/** Gives the lease up if `holder` has it, so another can take it without waiting for the expiry. */
export async function release(db: Executor, name: string, holder: string): Promise<void> {
  await db.delete(leases).where(and(eq(leases.name, name), eq(leases.holder, holder)))
}
