/**
 * This replica's verified bearer tokens, kept for a few seconds (AUTH_TOKEN_CACHE_TTL_MS) so that a
 * burst of requests with one token costs one lookup, not one per request (as API-key services do).
 * What that bounds: a revocation or rotation made by this replica takes effect at once (the service
 * forgets the token as it commits); one made by another replica, or by hand in the database, takes
 * effect here within the TTL. A token's own expiry is never overstayed: an entry lives until
 * min(verified + TTL, expires_at). Unknown tokens are not remembered (a 401 stays a lookup).
 */
import type { Db } from '../../db/client'
import type { Actor } from '../../lib/audit'

/** What `authenticate` answers for a valid token. */
export type VerifiedToken = Actor & { lastUsedAt: Date | null }

interface Entry {
  token: VerifiedToken
  /** Epoch ms after which the token must be looked up again. */
  until: number
}

/** Enough for every token in use at once; past it the oldest entry goes (Map keeps insertion order). */
const MAX_ENTRIES = 10_000

export class VerifiedTokenCache {
  private readonly entries = new Map<string, Entry>()

  constructor(
    readonly ttlMs: number,
    private readonly maxEntries = MAX_ENTRIES,
  ) {}

  get size() {
    return this.entries.size
  }

  /** The token verified under `tokenHash`, unless its time is up. */
  get(tokenHash: string, now: Date): VerifiedToken | undefined {
    const entry = this.entries.get(tokenHash)
    if (!entry) return undefined
    if (now.getTime() < entry.until) return entry.token
    this.entries.delete(tokenHash)
    return undefined
  }

  remember(tokenHash: string, token: VerifiedToken, expiresAt: Date | null, now: Date) {
    const until = Math.min(now.getTime() + this.ttlMs, expiresAt?.getTime() ?? Number.POSITIVE_INFINITY)
    this.entries.delete(tokenHash)
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(tokenHash, { token, until })
  }

  /** After a use was recorded: the cached last use follows, so the next request does not record it again. */
  touched(tokenId: number, at: Date) {
    for (const entry of this.entries.values()) {
      if (entry.token.tokenId === tokenId) entry.token = { ...entry.token, lastUsedAt: at }
    }
  }

  /** A revoked token (or every one: a rotated bootstrap token has a new hash under the same name). */
  forget(tokenId?: number) {
    if (tokenId === undefined) return this.entries.clear()
    for (const [hash, entry] of this.entries) if (entry.token.tokenId === tokenId) this.entries.delete(hash)
  }
}

// Keyed by the database handle rather than passed around: the token service is the one place that
// verifies, revokes and rotates tokens, and it receives only a Db.
const caches = new WeakMap<Db, VerifiedTokenCache>()

/** Turns the cache on for this database handle (src/index.ts, from the config); 0 turns it off. */
export function cacheVerifiedTokens(db: Db, ttlMs: number) {
  if (ttlMs > 0) caches.set(db, new VerifiedTokenCache(ttlMs))
  else caches.delete(db)
}

/** The cache of this database handle, if it has one. */
export const verifiedTokensOf = (db: Db): VerifiedTokenCache | undefined => caches.get(db)
