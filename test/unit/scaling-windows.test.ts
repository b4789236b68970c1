import { describe, expect, test } from 'bun:test'
import { nextOccurrence, parseCron, TimeZone } from '../../src/modules/scaling/cron'
import {
  effectiveBounds,
  type ReplicaBounds,
  type ScalingSchedule,
  type ScalingWindow,
  timeline,
  validateSchedule,
} from '../../src/modules/scaling/windows'

const base: ReplicaBounds = { min: 3, max: 10 }
const limits = { minReplicas: 1, maxReplicas: 100 }
const at = (iso: string) => new Date(iso)
const schedule = (timezone: string, ...windows: ScalingWindow[]): ScalingSchedule => ({ timezone, windows })
const bounds = (s: ScalingSchedule, iso: string) => effectiveBounds(s, base, at(iso))
/** The instants (ISO, UTC) at which the timeline says `window` opens or closes. */
const edges = (s: ScalingSchedule, from: string, to: string, window: string, event: 'open' | 'close') =>
  timeline(s, base, at(from), at(to))
    .filter((entry) => entry.cause.some((cause) => cause.window === window && cause.event === event))
    .map((entry) => entry.at.toISOString())
/** The next `count` occurrences of a cron expression after `from`, as UTC ISO strings. */
const occurrences = (expression: string, zone: string, from: string, count: number) => {
  const result: string[] = []
  let instant = Date.parse(from)
  for (let i = 0; i < count; i++) {
    const next = nextOccurrence(parseCron(expression), TimeZone.get(zone), instant)
    if (!next) break
    instant = next.instant
    result.push(new Date(instant).toISOString())
  }
  return result
}

describe('effective bounds', () => {
  // 22:00–06:00 Berlin time; in June Berlin is UTC+2.
  const night = schedule('Europe/Berlin', { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 })

  test('outside every window the base bounds hold', () => {
    expect(bounds(night, '2025-06-02T10:00:00Z')).toEqual({ min: 3, max: 10, windows: [] })
  })

  test('inside a window its bounds hold, even below the base', () => {
    expect(bounds(night, '2025-06-02T21:00:00Z')).toEqual({ min: 1, max: 2, windows: ['night'] })
  })

  test('a window crossing midnight is open on both sides of it, from start inclusive to end exclusive', () => {
    expect(bounds(night, '2025-06-02T19:59:59.999Z').windows).toEqual([]) // 21:59:59.999
    expect(bounds(night, '2025-06-02T20:00:00Z').windows).toEqual(['night']) // 22:00
    expect(bounds(night, '2025-06-02T22:30:00Z').windows).toEqual(['night']) // 00:30 the next day
    expect(bounds(night, '2025-06-03T03:59:59.999Z').windows).toEqual(['night']) // 05:59:59.999
    expect(bounds(night, '2025-06-03T04:00:00Z').windows).toEqual([]) // 06:00
  })

  test('duration_minutes closes the window after that much time, like the equivalent end', () => {
    const byDuration = schedule('Europe/Berlin', { name: 'night', start: '0 22 * * *', duration_minutes: 480, min_replicas: 1, max_replicas: 2 })
    for (const iso of ['2025-06-02T19:59:00Z', '2025-06-02T20:00:00Z', '2025-06-03T01:00:00Z', '2025-06-03T03:59:00Z', '2025-06-03T04:00:00Z']) {
      expect(bounds(byDuration, iso)).toEqual(bounds(night, iso))
    }
  })

  test('end is wall-clock, duration is elapsed time: they differ on a night the clocks go back', () => {
    // Berlin, 2025-10-26: 03:00 CEST becomes 02:00 CET, so 22:00 → 06:00 lasts nine hours.
    const byEnd = night
    const byDuration = schedule('Europe/Berlin', { name: 'night', start: '0 22 * * *', duration_minutes: 480, min_replicas: 1, max_replicas: 2 })
    expect(edges(byEnd, '2025-10-25T12:00:00Z', '2025-10-26T12:00:00Z', 'night', 'close')).toEqual(['2025-10-26T05:00:00.000Z']) // 06:00 CET
    expect(edges(byDuration, '2025-10-25T12:00:00Z', '2025-10-26T12:00:00Z', 'night', 'close')).toEqual(['2025-10-26T04:00:00.000Z']) // 05:00 CET
  })

  test('overlapping windows: the highest min_replicas and the highest max_replicas win, from different windows', () => {
    const s = schedule(
      'UTC',
      { name: 'floor', start: '0 8 * * *', end: '0 18 * * *', min_replicas: 6, max_replicas: 8 },
      { name: 'burst', start: '0 12 * * *', end: '0 14 * * *', min_replicas: 2, max_replicas: 40 },
    )
    expect(bounds(s, '2025-06-02T09:00:00Z')).toEqual({ min: 6, max: 8, windows: ['floor'] })
    expect(bounds(s, '2025-06-02T13:00:00Z')).toEqual({ min: 6, max: 40, windows: ['floor', 'burst'] })
    expect(bounds(s, '2025-06-02T15:00:00Z')).toEqual({ min: 6, max: 8, windows: ['floor'] })
  })

  test('a start while the window is already open does not move its end', () => {
    // Opens at 09:00 and again at 10:00; the first 17:00 after 09:00 closes it.
    const s = schedule('UTC', { name: 'office', start: '0 9,10 * * 1-5', end: '0 17 * * *', min_replicas: 4, max_replicas: 10 })
    expect(edges(s, '2025-06-02T00:00:00Z', '2025-06-02T23:00:00Z', 'office', 'open')).toEqual(['2025-06-02T09:00:00.000Z'])
    expect(edges(s, '2025-06-02T00:00:00Z', '2025-06-02T23:00:00Z', 'office', 'close')).toEqual(['2025-06-02T17:00:00.000Z'])
  })

  test('starts closer together than the duration keep the window open without a gap', () => {
    const s = schedule('UTC', { name: 'always', start: '0 * * * *', duration_minutes: 90, min_replicas: 5, max_replicas: 5 })
    const entries = timeline(s, base, at('2025-06-02T00:30:00Z'), at('2025-06-02T12:00:00Z'))
    expect(entries).toHaveLength(1)
    expect(entries[0]?.windows).toEqual(['always'])
  })

  test('day-of-week names and ranges: a weekday window is closed at the weekend', () => {
    const s = schedule('UTC', { name: 'weekdays', start: '0 8 * * MON-FRI', duration_minutes: 600, min_replicas: 5, max_replicas: 20 })
    expect(bounds(s, '2025-06-06T09:00:00Z').windows).toEqual(['weekdays']) // Friday
    expect(bounds(s, '2025-06-07T09:00:00Z').windows).toEqual([]) // Saturday
  })

  test('when both day-of-month and day-of-week are restricted, either matches (as in every cron)', () => {
    // The 1st of the month or any Sunday.
    expect(occurrences('0 0 1 * 0', 'UTC', '2025-06-01T00:00:00Z', 3)).toEqual([
      '2025-06-08T00:00:00.000Z',
      '2025-06-15T00:00:00.000Z',
      '2025-06-22T00:00:00.000Z',
    ])
  })
})

describe('daylight saving time', () => {
  test('Europe/Berlin spring forward: a 02:30 start happens once, at 03:00 CEST', () => {
    const s = schedule('Europe/Berlin', { name: 'w', start: '30 2 * * *', duration_minutes: 60, min_replicas: 5, max_replicas: 5 })
    // 2025-03-30 02:00 CET → 03:00 CEST (01:00Z).
    expect(edges(s, '2025-03-29T00:00:00Z', '2025-03-31T00:00:00Z', 'w', 'open')).toEqual([
      '2025-03-29T01:30:00.000Z', // 02:30 CET
      '2025-03-30T01:00:00.000Z', // the first instant after the gap
    ])
    expect(bounds(s, '2025-03-30T01:59:00Z').windows).toEqual(['w'])
    expect(bounds(s, '2025-03-30T02:00:00Z').windows).toEqual([])
  })

  test('Europe/Berlin fall back: a start in the repeated hour opens once, the first time', () => {
    const s = schedule('Europe/Berlin', { name: 'w', start: '30 2 * * *', duration_minutes: 20, min_replicas: 5, max_replicas: 5 })
    // 2025-10-26 03:00 CEST → 02:00 CET: 02:30 is 00:30Z (CEST) and again 01:30Z (CET).
    expect(edges(s, '2025-10-26T00:00:00Z', '2025-10-27T00:00:00Z', 'w', 'open')).toEqual(['2025-10-26T00:30:00.000Z'])
    expect(bounds(s, '2025-10-26T00:40:00Z').windows).toEqual(['w'])
    expect(bounds(s, '2025-10-26T01:40:00Z').windows).toEqual([])
  })

  test('America/New_York spring forward: a window from 02:30 to 04:00 opens at 03:00 EDT', () => {
    const s = schedule('America/New_York', { name: 'w', start: '30 2 * * *', end: '0 4 * * *', min_replicas: 5, max_replicas: 5 })
    // 2025-03-09 02:00 EST → 03:00 EDT (07:00Z).
    expect(edges(s, '2025-03-09T00:00:00Z', '2025-03-10T00:00:00Z', 'w', 'open')).toEqual(['2025-03-09T07:00:00.000Z'])
    expect(edges(s, '2025-03-09T00:00:00Z', '2025-03-10T00:00:00Z', 'w', 'close')).toEqual(['2025-03-09T08:00:00.000Z'])
  })

  test('America/New_York fall back: an hourly window does not open again in the repeated hour', () => {
    const s = schedule('America/New_York', { name: 'w', start: '0 * * * *', duration_minutes: 30, min_replicas: 5, max_replicas: 5 })
    // 2025-11-02 02:00 EDT → 01:00 EST: 01:00 is 05:00Z (EDT) and again 06:00Z (EST).
    expect(edges(s, '2025-11-02T04:30:00Z', '2025-11-02T07:45:00Z', 'w', 'open')).toEqual([
      '2025-11-02T05:00:00.000Z', // 01:00 EDT
      '2025-11-02T07:00:00.000Z', // 02:00 EST
    ])
    expect(bounds(s, '2025-11-02T06:10:00Z').windows).toEqual([]) // 01:10 EST
  })

  test('America/New_York fall back: a start at 01:45 is found from inside the repeated hour', () => {
    const s = schedule('America/New_York', { name: 'w', start: '45 1 * * *', duration_minutes: 60, min_replicas: 5, max_replicas: 5 })
    // At 01:15 EST (06:15Z) the wall clock reads before 01:45, but 01:45 EDT (05:45Z) already happened.
    expect(bounds(s, '2025-11-02T06:15:00Z').windows).toEqual(['w'])
    expect(bounds(s, '2025-11-02T06:45:00Z').windows).toEqual([])
  })

  test('Australia/Sydney, both transitions (southern hemisphere)', () => {
    const s = schedule('Australia/Sydney', { name: 'w', start: '30 2 * * *', duration_minutes: 30, min_replicas: 5, max_replicas: 5 })
    // 2025-04-06 03:00 AEDT → 02:00 AEST: 02:30 AEDT is 15:30Z, 02:30 AEST would be 16:30Z.
    expect(edges(s, '2025-04-05T12:00:00Z', '2025-04-06T12:00:00Z', 'w', 'open')).toEqual(['2025-04-05T15:30:00.000Z'])
    // 2025-10-05 02:00 AEST → 03:00 AEDT (2025-10-04T16:00Z).
    expect(edges(s, '2025-10-04T12:00:00Z', '2025-10-05T12:00:00Z', 'w', 'open')).toEqual(['2025-10-04T16:00:00.000Z'])
  })

  test('Australia/Lord_Howe shifts by 30 minutes: 02:15 in the gap becomes 02:30', () => {
    expect(occurrences('15 2 * * *', 'Australia/Lord_Howe', '2025-10-04T00:00:00Z', 2)).toEqual([
      '2025-10-04T15:30:00.000Z', // 02:30 +11 on the day of the change
      '2025-10-05T15:15:00.000Z', // 02:15 +11
    ])
  })

  test('several skipped wall times become one occurrence', () => {
    // Berlin 2025-03-30: 02:00, 02:15, 02:30 and 02:45 do not exist; 03:00 is 01:00Z.
    expect(occurrences('*/15 * * * *', 'Europe/Berlin', '2025-03-30T00:40:00Z', 3)).toEqual([
      '2025-03-30T00:45:00.000Z',
      '2025-03-30T01:00:00.000Z',
      '2025-03-30T01:15:00.000Z',
    ])
  })

  test('the timeline agrees with effective bounds minute by minute across a DST week', () => {
    const s = schedule(
      'America/New_York',
      { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 },
      { name: 'early', start: '30 1 * * *', duration_minutes: 45, min_replicas: 4, max_replicas: 6 },
      { name: 'gap', start: '30 2 * * 0', end: '15 3 * * 0', min_replicas: 2, max_replicas: 12 },
      { name: 'office', start: '0 9 * * 1-5', end: '0 17 * * 1-5', min_replicas: 6, max_replicas: 30 },
    )
    for (const [from, to] of [
      ['2025-03-07T00:00:00Z', '2025-03-11T00:00:00Z'],
      ['2025-10-31T00:00:00Z', '2025-11-04T00:00:00Z'],
    ] as const) {
      const entries = timeline(s, base, at(from), at(to))
      let index = 0
      for (let t = Date.parse(from); t <= Date.parse(to); t += 60_000) {
        while (index + 1 < entries.length && (entries[index + 1] as { at: Date }).at.getTime() <= t) index++
        const { min, max, windows } = entries[index] as (typeof entries)[number]
        expect({ at: new Date(t).toISOString(), min, max, windows }).toEqual({ at: new Date(t).toISOString(), ...effectiveBounds(s, base, new Date(t)) })
      }
    }
  })
})

describe('timeline', () => {
  test('lists the state at `from`, then every change with its time and the window edge that caused it', () => {
    const s = schedule(
      'Europe/Berlin',
      { name: 'night', start: '0 22 * * *', end: '0 6 * * *', min_replicas: 1, max_replicas: 2 },
      { name: 'batch', start: '0 23 * * *', duration_minutes: 120, min_replicas: 4, max_replicas: 4 },
    )
    expect(timeline(s, base, at('2025-06-01T12:00:00Z'), at('2025-06-02T12:00:00Z'))).toEqual([
      { at: at('2025-06-01T12:00:00Z'), min: 3, max: 10, windows: [], cause: [] },
      { at: at('2025-06-01T20:00:00Z'), min: 1, max: 2, windows: ['night'], cause: [{ window: 'night', event: 'open' }] },
      { at: at('2025-06-01T21:00:00Z'), min: 4, max: 4, windows: ['night', 'batch'], cause: [{ window: 'batch', event: 'open' }] },
      { at: at('2025-06-01T23:00:00Z'), min: 1, max: 2, windows: ['night'], cause: [{ window: 'batch', event: 'close' }] },
      { at: at('2025-06-02T04:00:00Z'), min: 3, max: 10, windows: [], cause: [{ window: 'night', event: 'close' }] },
    ])
  })

  test('a window already open at `from` is in the first entry; edges exactly at `to` are included', () => {
    const s = schedule('UTC', { name: 'w', start: '0 8 * * *', end: '0 12 * * *', min_replicas: 5, max_replicas: 5 })
    expect(timeline(s, base, at('2025-06-02T09:00:00Z'), at('2025-06-02T12:00:00Z'))).toEqual([
      { at: at('2025-06-02T09:00:00Z'), min: 5, max: 5, windows: ['w'], cause: [] },
      { at: at('2025-06-02T12:00:00Z'), min: 3, max: 10, windows: [], cause: [{ window: 'w', event: 'close' }] },
    ])
  })

  test('one window closing as another opens is one change with both causes', () => {
    const s = schedule(
      'UTC',
      { name: 'day', start: '0 8 * * *', end: '0 20 * * *', min_replicas: 6, max_replicas: 20 },
      { name: 'evening', start: '0 20 * * *', end: '0 23 * * *', min_replicas: 2, max_replicas: 4 },
    )
    const change = timeline(s, base, at('2025-06-02T12:00:00Z'), at('2025-06-02T21:00:00Z'))[1]
    expect(change).toEqual({
      at: at('2025-06-02T20:00:00Z'),
      min: 2,
      max: 4,
      windows: ['evening'],
      cause: [
        { window: 'day', event: 'close' },
        { window: 'evening', event: 'open' },
      ],
    })
  })

  test('a schedule without windows is one entry with the base bounds', () => {
    expect(timeline(schedule('UTC'), base, at('2025-06-02T00:00:00Z'), at('2025-06-09T00:00:00Z'))).toEqual([
      { at: at('2025-06-02T00:00:00Z'), min: 3, max: 10, windows: [], cause: [] },
    ])
  })
})

describe('validation', () => {
  const window = (overrides: Partial<ScalingWindow> = {}): ScalingWindow => ({
    name: 'night',
    start: '0 22 * * *',
    end: '0 6 * * *',
    min_replicas: 1,
    max_replicas: 2,
    ...overrides,
  })
  const errorsOf = (s: ScalingSchedule) => validateSchedule(s, limits)

  test('a valid schedule has no errors', () => {
    expect(
      errorsOf(schedule('Europe/Berlin', window(), window({ name: 'weekend', start: '0 0 * * SAT,SUN', end: undefined, duration_minutes: 1440 }))),
    ).toEqual([])
  })

  test('cron with other than 5 fields (e.g. with seconds, or a macro) is refused at its path', () => {
    expect(errorsOf(schedule('UTC', window({ start: '0 0 22 * * *' })))).toEqual([
      { path: '/windows/0/start', message: expect.stringContaining('expected 5 fields') },
    ])
    expect(errorsOf(schedule('UTC', window({ end: '@daily' })))).toEqual([
      { path: '/windows/0/end', message: expect.stringContaining('expected 5 fields') },
    ])
  })

  test.each([
    ['60 * * * *', 'minute field: 60 is out of range 0-59'],
    ['0 24 * * *', 'hour field: 24 is out of range 0-23'],
    ['0 0 0 * *', 'day-of-month field: 0 is out of range 1-31'],
    ['0 0 * 13 *', 'month field: 13 is out of range 1-12'],
    ['0 0 * * 8', 'day-of-week field: 8 is out of range 0-7'],
    ['0 0 * * FOO', "day-of-week field: 'FOO' is not a number"],
    ['0 5-1 * * *', 'hour field: range 5-1 goes backwards'],
    ['*/0 * * * *', 'minute field: step 0 is out of range 1-59'],
    ['0 0 L * *', "day-of-month field: 'L' is not a number"],
    ['0,,5 0 * * *', "minute field: '' is not valid"],
  ])('cron syntax: %s', (start, message) => {
    expect(errorsOf(schedule('UTC', window({ start })))).toEqual([{ path: '/windows/0/start', message: expect.stringContaining(message) }])
  })

  test('cron accepts names, lists, steps, ranges with steps and 7 for Sunday', () => {
    expect(errorsOf(schedule('UTC', window({ start: '5/15 8-18/2 1,15 JAN-jun 1-5,7' })))).toEqual([])
    expect(occurrences('0 0 * * 7', 'UTC', '2025-06-02T00:00:00Z', 1)).toEqual(['2025-06-08T00:00:00.000Z'])
  })

  test('a cron expression that never matches is refused', () => {
    expect(errorsOf(schedule('UTC', window({ start: '0 0 31 4 *' })))).toEqual([
      { path: '/windows/0/start', message: "'0 0 31 4 *' never matches any date" },
    ])
  })

  test('an unknown time zone is refused, and so is a fixed offset', () => {
    expect(errorsOf(schedule('Mars/Olympus_Mons', window()))).toEqual([{ path: '/timezone', message: expect.stringContaining('not a known IANA time zone') }])
    expect(errorsOf(schedule('+02:00', window()))).toEqual([{ path: '/timezone', message: expect.stringContaining('not a known IANA time zone') }])
  })

  test('start equal to end is refused, also when written differently', () => {
    expect(errorsOf(schedule('UTC', window({ start: '0 9 * * *', end: '0 9 * * *' })))).toEqual([
      { path: '/windows/0/end', message: 'end is the same as start: the window would never be open' },
    ])
    expect(errorsOf(schedule('UTC', window({ start: '0 9 * * 1-5', end: '00 09 * * MON-FRI' })))).toHaveLength(1)
  })

  test('min_replicas above max_replicas is refused', () => {
    expect(errorsOf(schedule('UTC', window({ min_replicas: 5, max_replicas: 2 })))).toEqual([
      { path: '/windows/0/min_replicas', message: 'min_replicas (5) is above max_replicas (2)' },
    ])
  })

  test('bounds outside what the environment allows are refused', () => {
    expect(errorsOf(schedule('UTC', window({ min_replicas: 0, max_replicas: 101 })))).toEqual([
      { path: '/windows/0/min_replicas', message: 'must be a whole number from 1 to 100' },
      { path: '/windows/0/max_replicas', message: 'must be a whole number from 1 to 100' },
    ])
  })

  test('duplicate window names are refused at the second one', () => {
    expect(errorsOf(schedule('UTC', window(), window({ start: '0 12 * * *', end: '0 13 * * *' })))).toEqual([
      { path: '/windows/1/name', message: "duplicate window name 'night'" },
    ])
  })

  test('end and duration_minutes: exactly one of them', () => {
    expect(errorsOf(schedule('UTC', window({ duration_minutes: 60 })))).toEqual([
      { path: '/windows/0/end', message: 'give either end or duration_minutes, not both' },
    ])
    expect(errorsOf(schedule('UTC', window({ end: undefined })))).toEqual([{ path: '/windows/0/end', message: 'give end or duration_minutes' }])
  })

  test('duration_minutes must be whole minutes, from one minute to a week', () => {
    for (const duration_minutes of [0, 1.5, 10081]) {
      expect(errorsOf(schedule('UTC', window({ end: undefined, duration_minutes })))).toEqual([
        { path: '/windows/0/duration_minutes', message: 'must be a whole number of minutes from 1 to 10080' },
      ])
    }
  })

  test('every error is reported at once', () => {
    const errors = errorsOf(
      schedule('Nowhere/Else', window({ start: 'x' }), window({ min_replicas: 9, max_replicas: 3 })),
    )
    expect(errors.map((error) => error.path)).toEqual(['/timezone', '/windows/0/start', '/windows/1/name', '/windows/1/min_replicas'])
  })
})
