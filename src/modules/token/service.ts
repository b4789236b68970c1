import { and, asc, count, eq, isNull } from 'drizzle-orm'
import type { Db } from '../../db/client'
import { type ApiTokenRow, apiTokens, type TokenScope } from '../../db/schema'
import type { AuditContext } from '../../lib/audit'
import { recordAudit } from '../../lib/audit-log'
import { alreadyExists, isDuplicateKey, notFound } from '../../lib/errors'
import { type Page, type PageRequest, pageWindow } from '../../lib/pagination'
import type { TokenModel } from './model'
import { type VerifiedToken, verifiedTokensOf } from './verified-tokens'

const TOKEN_PREFIX = 'dms_'

export function hashToken(token: string): string {
  return new Bun.CryptoHasher('sha256').update(token).digest('hex')
}

/** 32 random bytes: a SHA-256 of it is as good as a slow hash, and lookups stay one indexed read. */
export function generateToken(): string {
  return TOKEN_PREFIX + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')
}

export function toToken(row: ApiTokenRow): TokenModel.Token {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes,
    token_prefix: row.tokenPrefix,
    created_by: row.createdBy,
    created_at: row.createdAt.toISOString(),
    expires_at: row.expiresAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
  }
}

/**
 * The actor a bearer token stands for, or undefined when it is unknown, revoked or expired; from
 * this replica's verified-token cache when it has one (./verified-tokens.ts says what that bounds).
 */
export async function authenticate(db: Db, token: string, now = new Date()): Promise<VerifiedToken | undefined> {
  const tokenHash = hashToken(token)
  const cache = verifiedTokensOf(db)
  const cached = cache?.get(tokenHash, now)
  if (cached) return cached
  const [row] = await db.select().from(apiTokens).where(eq(apiTokens.tokenHash, tokenHash)).limit(1)
  if (!row || row.revokedAt || (row.expiresAt && row.expiresAt <= now)) return undefined
  const verified = { tokenId: row.id, name: row.name, scopes: row.scopes, lastUsedAt: row.lastUsedAt }
  cache?.remember(tokenHash, verified, row.expiresAt, now)
  return verified
}

export async function touchToken(db: Db, tokenId: number, now = new Date()) {
  verifiedTokensOf(db)?.touched(tokenId, now)
  await db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, tokenId))
}

export async function createToken(
  db: Db,
  audit: AuditContext,
  body: TokenModel.CreateBody,
): Promise<{ row: ApiTokenRow; token: string }> {
  const token = generateToken()
  const expiresAt = body.expires_in_days ? new Date(Date.now() + body.expires_in_days * 86_400_000) : null
  const scopes = [...new Set(body.scopes)].sort()
  try {
    const id = await db.transaction(async (tx) => {
      const [inserted] = await tx
        .insert(apiTokens)
        .values({
          name: body.name,
          tokenHash: hashToken(token),
          tokenPrefix: token.slice(0, 12),
          scopes,
          createdBy: audit.actor.name,
          expiresAt,
        })
        .$returningId()
      await recordAudit(tx, audit, { resourceType: 'token', resourceName: body.name, statusCode: 201, summary: { scopes, expires_at: expiresAt?.toISOString() ?? null } })
      return inserted?.id
    })
    return { row: await findToken(db, Number(id)), token }
  } catch (error) {
    if (isDuplicateKey(error)) throw alreadyExists(`Token with name ${body.name} already exists`)
    throw error
  }
}

export async function findToken(db: Db, id: number): Promise<ApiTokenRow> {
  const [row] = await db.select().from(apiTokens).where(eq(apiTokens.id, id)).limit(1)
  if (!row) throw notFound('Token', id)
  return row
}

export async function listTokens(db: Db, query: PageRequest & { include_revoked?: boolean }): Promise<Page<ApiTokenRow>> {
  const { page, limit, offset } = pageWindow(query)
  const where = query.include_revoked ? undefined : isNull(apiTokens.revokedAt)
  const [items, [totals]] = await Promise.all([
    db.select().from(apiTokens).where(where).orderBy(asc(apiTokens.id)).limit(limit).offset(offset),
    db.select({ total: count() }).from(apiTokens).where(where),
  ])
  return { items, total: totals?.total ?? 0, page, limit }
}

/** Revoking is idempotent: a revoked token stays revoked, with its first revocation time. */
export async function revokeToken(db: Db, audit: AuditContext, id: number): Promise<ApiTokenRow> {
  const existing = await findToken(db, id)
  await db.transaction(async (tx) => {
    await tx.update(apiTokens).set({ revokedAt: new Date() }).where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    await recordAudit(tx, audit, { resourceType: 'token', resourceName: existing.name, statusCode: 200, summary: { revoked: true } })
  })
  verifiedTokensOf(db)?.forget(id)
  return findToken(db, id)
}

/**
 * Makes sure a fresh install can be used: the bootstrap admin token from the environment is created
 * or rotated to the configured value; with none configured and no token at all, one is generated and
 * returned so that the caller can print it once.
 */
export async function ensureBootstrapAdmin(db: Db, username: string, configuredToken: string | undefined): Promise<string | undefined> {
  if (configuredToken) {
    const values = { tokenHash: hashToken(configuredToken), tokenPrefix: configuredToken.slice(0, 12), scopes: ['admin'] as TokenScope[] }
    await db
      .insert(apiTokens)
      .values({ name: username, createdBy: 'bootstrap', ...values })
      .onDuplicateKeyUpdate({ set: { ...values, revokedAt: null, expiresAt: null } })
    verifiedTokensOf(db)?.forget()
    return undefined
  }
  const [existing] = await db.select({ total: count() }).from(apiTokens)
  if ((existing?.total ?? 0) > 0) return undefined
  const token = generateToken()
  try {
    await db.insert(apiTokens).values({ name: username, tokenHash: hashToken(token), tokenPrefix: token.slice(0, 12), scopes: ['admin'], createdBy: 'bootstrap' })
  } catch (error) {
    // A replica started at the same moment created it (and printed it) first.
    if (isDuplicateKey(error)) return undefined
    throw error
  }
  return token
}
