import { afterAll, describe, expect, test } from 'bun:test'
import { mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { Scheduler, type ScalingTarget } from '../../src/modules/scaling/scheduler'
import { type ScalingSchedule, timeline } from '../../src/modules/scaling/windows'
import { createTestContext } from '../support/context'
import { type FakeScaling, fakeScaling } from '../support/scaling'

const ctx = await createTestContext()
// Two replicas of the control plane: their own pools on the same database.
const replicaA = connectDatabase({ driver: mysqlDriver(), url: ctx.url, poolSize: 3 })
const replicaB = connectDatabase({ driver: mysqlDriver(), url: ctx.url, poolSize: 3 })
afterAll(async () => void (await Promise.all([replicaA.close(), replicaB.close()])))

const MINUTE = 60_000
const base = { min: 3, max: 10 }
const schedule: ScalingSchedule = {
  timezone: 'Europe/Berlin',
  windows: [
    { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 },
    { name: 'office', start: '0 9 * * 1-5', end: '0 17 * * 1-5', min_replicas: 6, max_replicas: 30 },
    { name: 'batch', start: '30 23 * * *', duration_minutes: 90, min_replicas: 4, max_replicas: 8 },
  ],
}
const targets = (count: number): ScalingTarget[] =>
  Array.from({ length: count }, (_, i) => ({ serve: `serve-${i}`, env: 'prod', schedule, base, applied: base }))

/** A scheduler on one replica, reading the shared clock. */
const scheduler = (replica: typeof replicaA, holder: string, fake: FakeScaling, clock: { now: Date }, leaseName: string) =>
  new Scheduler({ db: replica.db, holder, leaseTtlMs: 3 * MINUTE, leaseName, clock: () => clock.now, deps: fake })

describe('scheduler with a database lease', () => {
  test('two schedulers ticking at the same moments apply each change exactly once', async () => {
    const fake = fakeScaling(targets(5))
    const clock = { now: new Date('2025-06-01T12:00:00Z') } // a Sunday
    const a = scheduler(replicaA, 'replica-a', fake, clock, 'same-moments')
    const b = scheduler(replicaB, 'replica-b', fake, clock, 'same-moments')
    const end = new Date('2025-06-04T12:00:00Z')
    let ran = 0
    for (; clock.now <= end; clock.now = new Date(clock.now.getTime() + 5 * MINUTE)) {
      const ticks = await Promise.all([a.tick(), b.tick()])
      ran += ticks.filter((tick) => tick.ran).length
      expect(ticks.filter((tick) => tick.ran)).toHaveLength(1)
    }
    expect(ran).toBe((3 * 24 * 60) / 5 + 1)
    // Every change of bounds in the timeline, once per target; the first entry is the state at the start.
    const changes = timeline(schedule, base, new Date('2025-06-01T12:00:00Z'), end)
      .slice(1)
      .filter((entry, i, all) => {
        const previous = i === 0 ? base : (all[i - 1] as (typeof all)[number])
        return entry.min !== previous.min || entry.max !== previous.max
      })
    expect(changes.length).toBeGreaterThan(10)
    for (const serve of fake.targets.map((target) => target.serve)) {
      expect(fake.calls.filter((call) => call.serve === serve).map((call) => call.bounds)).toEqual(
        changes.map(({ min, max }) => ({ min, max })),
      )
    }
  })

  test("the leader keeps the lease; when it dies, the other takes over after the lease's expiry", async () => {
    const fake = fakeScaling(targets(3))
    const clock = { now: new Date('2025-06-02T21:00:00Z') }
    const a = scheduler(replicaA, 'replica-a', fake, clock, 'takeover')
    const b = scheduler(replicaB, 'replica-b', fake, clock, 'takeover')
    expect((await a.tick()).ran).toBe(true)
    expect(await b.tick()).toEqual({ ran: false, reason: 'lease_held_elsewhere' })

    // a dies right after its 21:00 tick (which applied the night bounds) without releasing the lease.
    clock.now = new Date('2025-06-02T21:02:59.999Z')
    expect((await b.tick()).ran).toBe(false)
    clock.now = new Date('2025-06-02T21:03:00Z')
    const tick = await b.tick()
    expect(tick.ran).toBe(true)
    // a applied the night bounds before dying: nothing left for b to do.
    expect(tick).toMatchObject({ result: { targets: 3, changed: 0, unchanged: 3 } })
    expect(fake.calls).toHaveLength(3)
    // a comes back: b leads now.
    clock.now = new Date('2025-06-02T21:04:00Z')
    expect((await a.tick()).ran).toBe(false)
  })

  test('stop releases the lease: the other replica leads at its next tick', async () => {
    const fake = fakeScaling(targets(1))
    const clock = { now: new Date('2025-06-02T12:00:00Z') }
    const a = scheduler(replicaA, 'replica-a', fake, clock, 'stop')
    const b = scheduler(replicaB, 'replica-b', fake, clock, 'stop')
    expect((await a.tick()).ran).toBe(true)
    await a.stop()
    expect((await b.tick()).ran).toBe(true)
  })
})
