import { describe, expect, test } from 'bun:test'
import { createTestContext } from '../../../test/support/context'
import { authenticate } from './service'
import { cacheVerifiedTokens, type VerifiedToken, VerifiedTokenCache, verifiedTokensOf } from './verified-tokens'

const at = (ms: number) => new Date(Date.UTC(2030, 0, 1) + ms)
const token = (tokenId: number): VerifiedToken => ({ tokenId, name: `t${tokenId}`, scopes: ['read'], lastUsedAt: null })

describe('VerifiedTokenCache', () => {
  test('an entry lives for the TTL, then is gone', () => {
    const cache = new VerifiedTokenCache(5_000)
    cache.remember('h1', token(1), null, at(0))
    expect(cache.get('h1', at(4_999))?.tokenId).toBe(1)
    expect(cache.get('h1', at(5_000))).toBeUndefined()
    expect(cache.size).toBe(0)
  })

  test("never past the token's own expiry", () => {
    const cache = new VerifiedTokenCache(5_000)
    cache.remember('h1', token(1), at(1_000), at(0))
    expect(cache.get('h1', at(999))).toBeDefined()
    expect(cache.get('h1', at(1_000))).toBeUndefined()
  })

  test('bounded: past its size the oldest entry goes', () => {
    const cache = new VerifiedTokenCache(5_000, 2)
    cache.remember('h1', token(1), null, at(0))
    cache.remember('h2', token(2), null, at(0))
    cache.remember('h3', token(3), null, at(0))
    expect(cache.size).toBe(2)
    expect(cache.get('h1', at(1))).toBeUndefined()
    expect(cache.get('h3', at(1))?.tokenId).toBe(3)
  })

  test('forgets one token under every hash, or all; follows a recorded use', () => {
    const cache = new VerifiedTokenCache(5_000)
    cache.remember('h1', token(1), null, at(0))
    cache.remember('h2', token(2), null, at(0))
    cache.touched(2, at(10))
    expect(cache.get('h2', at(20))?.lastUsedAt).toEqual(at(10))
    cache.forget(1)
    expect(cache.get('h1', at(20))).toBeUndefined()
    expect(cache.get('h2', at(20))).toBeDefined()
    cache.forget()
    expect(cache.size).toBe(0)
  })
})

const ttlMs = 5_000
const ctx = await createTestContext()
cacheVerifiedTokens(ctx.database.db, ttlMs)
const get = (bearer: string) => ctx.request('GET', '/api/v1/environment', undefined, { authorization: `Bearer ${bearer}` })

describe('authentication with the cache on', () => {

  test('a revocation through this replica is effective at once', async () => {
    const bearer = await ctx.createToken(['read'], 'revoked-here')
    expect((await get(bearer)).status).toBe(200)
    expect(verifiedTokensOf(ctx.database.db)?.size).toBeGreaterThan(0)
    const [row] = await ctx.query<{ id: number }>("select id from api_tokens where name = 'revoked-here'")
    expect((await ctx.request('DELETE', `/api/v1/tokens/${row?.id}`)).status).toBe(200)
    expect((await get(bearer)).status).toBe(401)
  })

  test('a revocation elsewhere (another replica, by hand) is effective within the TTL', async () => {
    const bearer = await ctx.createToken(['read'], 'revoked-elsewhere')
    const now = new Date()
    expect(await authenticate(ctx.database.db, bearer, now)).toMatchObject({ name: 'revoked-elsewhere' })
    await ctx.query("update api_tokens set revoked_at = now() where name = 'revoked-elsewhere'")
    // Still trusted inside the TTL (no lookup), refused once it is over.
    expect(await authenticate(ctx.database.db, bearer, new Date(now.getTime() + ttlMs - 1))).toBeDefined()
    expect(await authenticate(ctx.database.db, bearer, new Date(now.getTime() + ttlMs))).toBeUndefined()
  })

  test('an unknown token is looked up every time, never remembered', async () => {
    const cache = verifiedTokensOf(ctx.database.db)
    cache?.forget()
    expect((await get('dms_unknown')).status).toBe(401)
    expect(cache?.size).toBe(0)
  })

  test('0 turns the cache off', () => {
    cacheVerifiedTokens(ctx.database.db, 0)
    expect(verifiedTokensOf(ctx.database.db)).toBeUndefined()
  })
})
