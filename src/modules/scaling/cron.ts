/**
 * Five-field cron expressions evaluated on the wall clock of an IANA time zone.
 *
 * Why not a library: `croner` (checked at 11.0.1) shifts a start that falls in a spring-forward gap to
 * the first valid instant, as we want, but it fires the wall times of a repeated (fall-back) hour
 * twice (`*\/30` gives 01:00, 01:30, 01:00, 01:30 in New York on 2025-11-02), and it has no
 * "latest occurrence at or before t", which a level-triggered scheduler needs. So matching is done here on wall-clock minutes, and the mapping from wall time to
 * instants (the only place DST matters) is explicit:
 *
 * - a wall minute that exists once is that instant;
 * - a wall minute that exists twice (fall-back) is only its first instant — a repeated hour never
 *   produces an occurrence twice;
 * - a wall minute that does not exist (spring-forward gap) becomes the first instant after the gap,
 *   so a 02:30 start still happens once on the day that skips 02:30 (several skipped minutes all
 *   become that one instant).
 *
 * Wall times are carried as "pseudo-UTC" milliseconds: the local fields encoded with Date.UTC, so day
 * and minute arithmetic on them is plain integer arithmetic with no DST in the way.
 */

const MINUTE = 60_000
const DAY = 86_400_000
/** Eight years of days: long enough to reach a 29 February from any date (2100 aside). */
const SEARCH_DAYS = 8 * 366
/** The largest backward clock change considered (real ones are 30 minutes to 1 hour). */
const MAX_FALL_BACK = 3 * 3_600_000

interface FieldSpec {
  name: string
  min: number
  max: number
  names?: readonly string[]
}

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  {
    name: 'month',
    min: 1,
    max: 12,
    names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
  },
  // 7 is accepted as Sunday, like every cron.
  { name: 'day-of-week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
]

export class CronSyntaxError extends Error {
  override name = 'CronSyntaxError'
}

export interface CronExpression {
  readonly source: string
  /** Minutes of the day (hour × 60 + minute) that match, ascending. */
  readonly minutesOfDay: readonly number[]
  readonly daysOfMonth: ReadonlySet<number>
  readonly months: ReadonlySet<number>
  readonly daysOfWeek: ReadonlySet<number>
  /** Vixie cron: when both day fields are restricted, a day matches if EITHER matches. */
  readonly dayFieldsOred: boolean
}

function parseValue(text: string, spec: FieldSpec): number {
  const named = spec.names?.indexOf(text.toLowerCase()) ?? -1
  if (named >= 0) return named + (spec.name === 'month' ? 1 : 0)
  if (!/^\d+$/.test(text)) throw new CronSyntaxError(`${spec.name} field: '${text}' is not a number`)
  const value = Number(text)
  if (value < spec.min || value > spec.max) {
    throw new CronSyntaxError(`${spec.name} field: ${value} is out of range ${spec.min}-${spec.max}`)
  }
  return value
}

function parseField(text: string, spec: FieldSpec): Set<number> {
  const values = new Set<number>()
  for (const item of text.split(',')) {
    const match = /^([^/]+)(?:\/(\d+))?$/.exec(item)
    if (!match || match[1] === undefined) throw new CronSyntaxError(`${spec.name} field: '${item}' is not valid`)
    const [, range, stepText] = match
    const step = stepText === undefined ? 1 : Number(stepText)
    if (step < 1 || step > spec.max) throw new CronSyntaxError(`${spec.name} field: step ${stepText} is out of range 1-${spec.max}`)
    let from: number
    let to: number
    if (range === '*') {
      from = spec.min
      to = spec.max
    } else if (range.includes('-')) {
      const [low, high, ...rest] = range.split('-')
      if (low === undefined || high === undefined || rest.length > 0) throw new CronSyntaxError(`${spec.name} field: '${item}' is not valid`)
      from = parseValue(low, spec)
      to = parseValue(high, spec)
      if (from > to) throw new CronSyntaxError(`${spec.name} field: range ${range} goes backwards`)
    } else {
      from = parseValue(range, spec)
      // `5/15` means 5, 20, 35, 50: from the value to the end of the field.
      to = stepText === undefined ? from : spec.max
    }
    for (let value = from; value <= to; value += step) values.add(value)
  }
  return values
}

const parsed = new Map<string, CronExpression>()

/** Parses a five-field cron expression (memoised: schedules repeat the same few expressions). */
export function parseCron(source: string): CronExpression {
  const known = parsed.get(source)
  if (known) return known
  const fields = source.trim().split(/\s+/)
  if (fields.length !== 5 || fields[0] === '') {
    throw new CronSyntaxError(
      `expected 5 fields (minute hour day-of-month month day-of-week), got ${fields[0] === '' ? 0 : fields.length}`,
    )
  }
  const [minutes, hours, daysOfMonth, months, daysOfWeek] = fields.map((field, index) => parseField(field, FIELDS[index] as FieldSpec)) as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ]
  if (daysOfWeek.delete(7)) daysOfWeek.add(0)
  const minutesOfDay: number[] = []
  for (const hour of [...hours].sort((a, b) => a - b)) {
    for (const minute of [...minutes].sort((a, b) => a - b)) minutesOfDay.push(hour * 60 + minute)
  }
  const expression: CronExpression = {
    source,
    minutesOfDay,
    daysOfMonth,
    months,
    daysOfWeek,
    dayFieldsOred: !fields[2]?.startsWith('*') && !fields[4]?.startsWith('*'),
  }
  // Bounded: expressions come from stored schedules, but a caller could feed arbitrary strings.
  if (parsed.size >= 10_000) parsed.clear()
  parsed.set(source, expression)
  return expression
}

/** True when both expressions match exactly the same wall-clock minutes. */
export function sameCron(a: CronExpression, b: CronExpression): boolean {
  const sameSet = (x: ReadonlySet<number>, y: ReadonlySet<number>) => x.size === y.size && [...x].every((v) => y.has(v))
  return (
    a.minutesOfDay.length === b.minutesOfDay.length &&
    a.minutesOfDay.every((value, index) => value === b.minutesOfDay[index]) &&
    sameSet(a.daysOfMonth, b.daysOfMonth) &&
    sameSet(a.months, b.months) &&
    sameSet(a.daysOfWeek, b.daysOfWeek) &&
    a.dayFieldsOred === b.dayFieldsOred
  )
}

function dayMatches(cron: CronExpression, dayStart: number): boolean {
  const date = new Date(dayStart)
  if (!cron.months.has(date.getUTCMonth() + 1)) return false
  const dom = cron.daysOfMonth.has(date.getUTCDate())
  const dow = cron.daysOfWeek.has(date.getUTCDay())
  return cron.dayFieldsOred ? dom || dow : dom && dow
}

/** The latest matching wall minute at or before `wall`, or null when none within SEARCH_DAYS. */
function previousWall(cron: CronExpression, wall: number): number | null {
  let day = Math.floor(wall / DAY) * DAY
  let limit = Math.floor((wall - day) / MINUTE)
  for (let i = 0; i < SEARCH_DAYS; i++, day -= DAY, limit = 1439) {
    if (!dayMatches(cron, day)) continue
    // Binary search for the last minute of the day ≤ limit.
    let lo = 0
    let hi = cron.minutesOfDay.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cron.minutesOfDay[mid] as number) <= limit) lo = mid + 1
      else hi = mid
    }
    if (lo > 0) return day + (cron.minutesOfDay[lo - 1] as number) * MINUTE
  }
  return null
}

/** The earliest matching wall minute strictly after `wall`, or null when none within SEARCH_DAYS. */
export function nextWall(cron: CronExpression, wall: number): number | null {
  const first = Math.floor(wall / MINUTE) * MINUTE + MINUTE
  let day = Math.floor(first / DAY) * DAY
  let limit = (first - day) / MINUTE
  for (let i = 0; i < SEARCH_DAYS; i++, day += DAY, limit = 0) {
    if (!dayMatches(cron, day)) continue
    let lo = 0
    let hi = cron.minutesOfDay.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cron.minutesOfDay[mid] as number) < limit) lo = mid + 1
      else hi = mid
    }
    if (lo < cron.minutesOfDay.length) return day + (cron.minutesOfDay[lo] as number) * MINUTE
  }
  return null
}

/** The UTC offsets of one IANA zone, read from Intl and memoised (formatToParts costs microseconds). */
export class TimeZone {
  private readonly format: Intl.DateTimeFormat
  private readonly offsets = new Map<number, number>()

  private constructor(readonly name: string) {
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    })
  }

  private static readonly zones = new Map<string, TimeZone>()

  /** The zone, or null when the name is not an IANA time zone Intl knows. */
  static find(name: string): TimeZone | null {
    const known = TimeZone.zones.get(name)
    if (known) return known
    // Intl also accepts fixed offsets such as "+01:00": they have no DST rules, so they are refused.
    if (/^[+-]/.test(name)) return null
    try {
      const zone = new TimeZone(name)
      TimeZone.zones.set(name, zone)
      return zone
    } catch {
      return null
    }
  }

  static get(name: string): TimeZone {
    const zone = TimeZone.find(name)
    if (!zone) throw new RangeError(`unknown time zone ${name}`)
    return zone
  }

  /** Milliseconds to add to an instant to get its wall-clock time. Offsets change on whole seconds. */
  offsetAt(instant: number): number {
    const second = Math.floor(instant / 1000) * 1000
    const known = this.offsets.get(second)
    if (known !== undefined) return known
    const parts: Record<string, number> = {}
    for (const part of this.format.formatToParts(second)) {
      if (part.type !== 'literal') parts[part.type] = Number(part.value)
    }
    const wall = Date.UTC(parts.year ?? 0, (parts.month ?? 1) - 1, parts.day, parts.hour, parts.minute, parts.second)
    const offset = wall - second
    if (this.offsets.size >= 100_000) this.offsets.clear()
    this.offsets.set(second, offset)
    return offset
  }

  wallAt(instant: number): number {
    return instant + this.offsetAt(instant)
  }

  /**
   * The instant a wall time denotes: the first of two in a repeated hour, and the end of the gap
   * (the first valid instant after it) for a wall time that a spring-forward skips.
   * Assumes at most one offset change within a day of `wall`, true of every zone in current use.
   */
  instantOf(wall: number): number {
    const before = this.offsetAt(wall - DAY)
    const after = this.offsetAt(wall + DAY)
    const candidates = [wall - before, wall - after].filter((instant) => this.wallAt(instant) === wall)
    if (candidates.length > 0) return Math.min(...candidates)
    // In a gap: `wall - after` is still before the change, `wall - before` after it. Find the change.
    let lo = Math.floor((wall - after) / 1000)
    let hi = Math.ceil((wall - before) / 1000)
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2)
      if (this.offsetAt(mid * 1000) === before) lo = mid
      else hi = mid
    }
    return hi * 1000
  }
}

/** An occurrence of a cron expression: the instant and the wall time that produced it. */
export interface Occurrence {
  instant: number
  wall: number
}

/** The latest occurrence at or before `at`, or null when the expression never matched in the search range. */
export function previousOccurrence(cron: CronExpression, zone: TimeZone, at: number): Occurrence | null {
  // After a fall-back the wall clock reads less than it did a moment ago; search from the highest
  // wall time already reached, then skip wall times whose (first) instant is still ahead.
  let wall: number | null = at + Math.max(zone.offsetAt(at), zone.offsetAt(at - MAX_FALL_BACK))
  for (;;) {
    wall = previousWall(cron, wall)
    if (wall === null) return null
    const instant = zone.instantOf(wall)
    if (instant <= at) return { instant, wall }
    wall -= MINUTE
  }
}

/** The earliest occurrence strictly after `at`, or null when none in the search range. */
export function nextOccurrence(cron: CronExpression, zone: TimeZone, at: number): Occurrence | null {
  let wall: number | null = zone.wallAt(at)
  for (;;) {
    wall = nextWall(cron, wall)
    if (wall === null) return null
    const instant = zone.instantOf(wall)
    // Inside a repeated hour, wall times ahead of the clock may have had their (first) instant already.
    if (instant > at) return { instant, wall }
  }
}

/** Why `source` is not a 5-field cron expression that ever matches, or undefined (a workflow's schedule). */
export function cronProblem(source: string): string | undefined {
  try {
    // Eight years from any day include every date there is (`0 0 31 4 *` never matches).
    if (nextWall(parseCron(source), Date.UTC(2024, 0, 1)) === null) return `'${source}' never matches any date`
  } catch (error) {
    if (error instanceof CronSyntaxError) return error.message
    throw error
  }
  return undefined
}
