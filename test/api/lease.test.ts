import { afterAll, describe, expect, test } from 'bun:test'
import { mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { release, tryAcquire } from '../../src/lib/lease'
import { createTestContext } from '../support/context'

const ctx = await createTestContext()
// Separate pools stand for separate replicas of the control plane.
const replicas = Array.from({ length: 4 }, () => connectDatabase({ driver: mysqlDriver(), url: ctx.url, poolSize: 5 }))
afterAll(async () => void (await Promise.all(replicas.map((replica) => replica.close()))))

const t0 = new Date('2025-06-02T10:00:00.000Z')
const later = (ms: number) => new Date(t0.getTime() + ms)
const row = async (name: string) => {
  const [found] = await ctx.query<{ holder: string; expires_at: Date; acquired_at: Date; renewed_at: Date }>(
    'select holder, expires_at, acquired_at, renewed_at from leases where name = ?',
    [name],
  )
  return found
}
/** 40 holders try at once, spread over the replicas' connections; returns the winners. */
const race = async (name: string, now: Date) => {
  const holders = Array.from({ length: 40 }, (_, i) => `holder-${i}`)
  const results = await Promise.all(
    holders.map((holder, i) => tryAcquire((replicas[i % replicas.length] as (typeof replicas)[number]).db, name, holder, 10_000, now)),
  )
  return holders.filter((_, i) => results[i])
}

describe('database lease', () => {
  test('many holders at once on a free lease: exactly one wins, and the row names it', async () => {
    for (let round = 0; round < 5; round++) {
      const winners = await race(`free-${round}`, t0)
      expect(winners).toHaveLength(1)
      expect((await row(`free-${round}`))?.holder).toBe(winners[0] as string)
    }
  })

  test('many holders at once on an expired lease: exactly one takes it over', async () => {
    for (let round = 0; round < 5; round++) {
      const name = `expired-${round}`
      expect(await tryAcquire(ctx.database.db, name, 'dead', 10_000, t0)).toBe(true)
      const winners = await race(name, later(10_000))
      expect(winners).toHaveLength(1)
      expect((await row(name))?.holder).toBe(winners[0] as string)
    }
  })

  test('the holder renews: the expiry moves, the acquisition time stays', async () => {
    expect(await tryAcquire(ctx.database.db, 'renew', 'a', 10_000, t0)).toBe(true)
    expect(await tryAcquire(ctx.database.db, 'renew', 'a', 10_000, later(5_000))).toBe(true)
    expect(await row('renew')).toEqual({ holder: 'a', expires_at: later(15_000), acquired_at: t0, renewed_at: later(5_000) })
    // Past the first expiry but not the renewed one: still a's.
    expect(await tryAcquire(ctx.database.db, 'renew', 'b', 10_000, later(12_000))).toBe(false)
  })

  test("a dead holder's lease is taken over at its expiry, not before", async () => {
    expect(await tryAcquire(ctx.database.db, 'takeover', 'a', 10_000, t0)).toBe(true)
    expect(await tryAcquire(ctx.database.db, 'takeover', 'b', 10_000, later(9_999))).toBe(false)
    expect(await tryAcquire(ctx.database.db, 'takeover', 'b', 10_000, later(10_000))).toBe(true)
    expect(await row('takeover')).toEqual({ holder: 'b', expires_at: later(20_000), acquired_at: later(10_000), renewed_at: later(10_000) })
    // The old holder coming back does not get it back.
    expect(await tryAcquire(ctx.database.db, 'takeover', 'a', 10_000, later(11_000))).toBe(false)
  })

  test('release lets another take it at once; a release by someone else changes nothing', async () => {
    expect(await tryAcquire(ctx.database.db, 'release', 'a', 60_000, t0)).toBe(true)
    await release(ctx.database.db, 'release', 'b')
    expect(await tryAcquire(ctx.database.db, 'release', 'b', 60_000, later(1_000))).toBe(false)
    await release(ctx.database.db, 'release', 'a')
    expect(await tryAcquire(ctx.database.db, 'release', 'b', 60_000, later(1_000))).toBe(true)
  })

  test('leases of different names are independent', async () => {
    expect(await tryAcquire(ctx.database.db, 'one', 'a', 60_000, t0)).toBe(true)
    expect(await tryAcquire(ctx.database.db, 'two', 'b', 60_000, t0)).toBe(true)
  })
})
