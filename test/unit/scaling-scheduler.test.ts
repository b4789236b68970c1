import { describe, expect, test } from 'bun:test'
import { runTick, type ScalingTarget } from '../../src/modules/scaling/scheduler'
import type { ScalingSchedule } from '../../src/modules/scaling/windows'
import { fakeScaling } from '../support/scaling'

// 22:00–06:00 UTC, down to 1–2 replicas.
const night: ScalingSchedule = {
  timezone: 'UTC',
  windows: [{ name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 }],
}
const base = { min: 3, max: 10 }
const target = (serve: string, applied = base, schedule = night): ScalingTarget => ({ serve, env: 'prod', schedule, base, applied })
const at = (iso: string) => new Date(iso)

describe('scaling tick', () => {
  test('applies the effective bounds where they differ from the applied ones, and records each change', async () => {
    const fake = fakeScaling([target('a'), target('b', { min: 1, max: 2 }), target('c', { min: 5, max: 5 })])
    const result = await runTick({ ...fake, now: at('2025-06-02T23:00:00Z') })
    expect(result).toEqual({ targets: 3, changed: 2, unchanged: 1, failed: 0, failures: [] })
    expect(fake.calls).toEqual([
      { serve: 'a', env: 'prod', bounds: { min: 1, max: 2 } },
      { serve: 'c', env: 'prod', bounds: { min: 1, max: 2 } },
    ])
    expect(fake.events.map(({ target, from, to, windows, outcome }) => ({ serve: target.serve, from, to, windows, outcome }))).toEqual([
      { serve: 'a', from: base, to: { min: 1, max: 2 }, windows: ['night'], outcome: 'applied' },
      { serve: 'c', from: { min: 5, max: 5 }, to: { min: 1, max: 2 }, windows: ['night'], outcome: 'applied' },
    ])
    expect(fake.events.every((event) => event.at.getTime() === at('2025-06-02T23:00:00Z').getTime())).toBe(true)
  })

  test('a second tick with nothing to change makes no cluster call', async () => {
    const fake = fakeScaling([target('a'), target('b')])
    await runTick({ ...fake, now: at('2025-06-02T23:00:00Z') })
    fake.calls.length = 0
    const result = await runTick({ ...fake, now: at('2025-06-02T23:01:00Z') })
    expect(result).toMatchObject({ targets: 2, changed: 0, unchanged: 2, failed: 0 })
    expect(fake.calls).toEqual([])
  })

  test('level-triggered: a window that opened and closed while no tick ran is not replayed', async () => {
    const fake = fakeScaling([target('a')])
    await runTick({ ...fake, now: at('2025-06-02T21:00:00Z') })
    // Down from 21:00 to 07:00: the whole night window was missed.
    const result = await runTick({ ...fake, now: at('2025-06-03T07:00:00Z') })
    expect(result).toMatchObject({ changed: 0, unchanged: 1 })
    expect(fake.calls).toEqual([])
  })

  test('after downtime the next tick converges to what holds now', async () => {
    // Scaled down for the night, then the scheduler was down past 06:00.
    const fake = fakeScaling([target('a', { min: 1, max: 2 })])
    expect(await runTick({ ...fake, now: at('2025-06-03T09:30:00Z') })).toMatchObject({ changed: 1 })
    expect(fake.calls).toEqual([{ serve: 'a', env: 'prod', bounds: base }])
  })

  test('a failing cluster call is counted and recorded, the other targets still change, and the next tick retries', async () => {
    const fake = fakeScaling([target('a'), target('b'), target('c')])
    fake.failFor.add('b')
    const result = await runTick({ ...fake, now: at('2025-06-02T23:00:00Z') })
    expect(result).toEqual({ targets: 3, changed: 2, unchanged: 0, failed: 1, failures: [{ serve: 'b', env: 'prod', error: 'cluster refused b' }] })
    expect(fake.calls.map((call) => call.serve)).toEqual(['a', 'c'])
    expect(fake.events.find((event) => event.target.serve === 'b')).toMatchObject({ outcome: 'failed', error: 'cluster refused b' })

    fake.failFor.clear()
    expect(await runTick({ ...fake, now: at('2025-06-02T23:01:00Z') })).toMatchObject({ changed: 1, unchanged: 2, failed: 0 })
    expect(fake.calls.map((call) => call.serve)).toEqual(['a', 'c', 'b'])
  })

  test('a schedule that cannot be evaluated fails that target only', async () => {
    const broken = { timezone: 'Gone/Away', windows: night.windows }
    const fake = fakeScaling([target('a'), target('broken', base, broken)])
    const result = await runTick({ ...fake, now: at('2025-06-02T23:00:00Z') })
    expect(result).toMatchObject({ targets: 2, changed: 1, failed: 1, failures: [{ serve: 'broken', env: 'prod', error: 'unknown time zone Gone/Away' }] })
  })

  test('a change whose event cannot be recorded counts as failed', async () => {
    const fake = fakeScaling([target('a')])
    const result = await runTick({
      ...fake,
      recordEvent: async () => {
        throw new Error('events table unavailable')
      },
      now: at('2025-06-02T23:00:00Z'),
    })
    expect(result).toMatchObject({ changed: 0, failed: 1, failures: [{ serve: 'a', env: 'prod', error: 'events table unavailable' }] })
  })

  test('cluster calls run concurrently, never more at once than the concurrency', async () => {
    const fake = fakeScaling(Array.from({ length: 20 }, (_, i) => target(`s${i}`)))
    let inFlight = 0
    let most = 0
    const result = await runTick({
      ...fake,
      setBounds: async (t, bounds) => {
        most = Math.max(most, ++inFlight)
        await new Promise((resolve) => setTimeout(resolve, 0))
        inFlight--
        await fake.setBounds(t, bounds)
      },
      concurrency: 4,
      now: at('2025-06-02T23:00:00Z'),
    })
    expect(result.changed).toBe(20)
    expect(most).toBe(4)
  })

  test('no targets: an empty tick', async () => {
    expect(await runTick({ ...fakeScaling([]), now: at('2025-06-02T23:00:00Z') })).toEqual({
      targets: 0,
      changed: 0,
      unchanged: 0,
      failed: 0,
      failures: [],
    })
  })
})
