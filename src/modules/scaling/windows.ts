/**
 * Scheduled scaling windows: validation and the arithmetic of effective replica bounds. Pure — no
 * database, no clock of its own: every function takes the instant it answers for.
 *
 * Semantics:
 * - Outside every window the base bounds (the infra config's min/max replicas) hold.
 * - Inside a window, the window's bounds hold instead of the base ones — they may be lower (a night
 *   scale-down) as well as higher.
 * - Where windows overlap, the highest `min_replicas` and the highest `max_replicas` among the open
 *   windows win. The result is always consistent: each window has min ≤ max, so the highest min is
 *   ≤ the highest max.
 * - A window opens at an occurrence of `start` and stays open until the next occurrence of `end`
 *   after it (so it may cross midnight: start `0 22 * * *`, end `0 6 * * *`), or for
 *   `duration_minutes` of elapsed time. Open means start ≤ t < end.
 * - Cron expressions are read on the wall clock of the schedule's IANA `timezone`. On a day that
 *   skips a wall time (spring forward), an occurrence in the gap happens once, at the first valid
 *   instant after the gap; in a repeated hour (fall back) an occurrence happens once, the first time.
 *   `end` is also matched on the wall clock: the first `end` whose wall time is after the start's.
 *   A window whose start and end both fall in the same skipped hour does not open that day.
 */
import type { FieldError } from '../../lib/errors'
import {
  type CronExpression,
  CronSyntaxError,
  nextOccurrence,
  nextWall,
  type Occurrence,
  parseCron,
  previousOccurrence,
  sameCron,
  TimeZone,
} from './cron'
import type { ScalingWindowRow } from '../../db/schema'

/** A window as stored (db/schema.ts); `end` and `duration_minutes` are exclusive. */
export type ScalingWindow = ScalingWindowRow

export interface ScalingSchedule {
  /** IANA time zone the cron expressions are read in, e.g. Europe/Berlin. */
  timezone: string
  windows: ScalingWindow[]
}

export interface ReplicaBounds {
  min: number
  max: number
}

export interface EffectiveBounds extends ReplicaBounds {
  /** Names of the open windows, in schedule order; empty when the base bounds hold. */
  windows: string[]
}

/** What the environment allows for min/max replicas. */
export interface ReplicaLimits {
  minReplicas: number
  maxReplicas: number
}

export interface TimelineEntry extends EffectiveBounds {
  at: Date
  /** The window edges at this instant that changed something; empty for the first entry (the state at `from`). */
  cause: { window: string; event: 'open' | 'close' }[]
}

/** The longest window a duration may describe: a week covers every weekly schedule. */
export const MAX_DURATION_MINUTES = 7 * 24 * 60

/** Every problem with a schedule, as field paths (`/windows/1/start`) and messages; empty when valid. */
export function validateSchedule(schedule: ScalingSchedule, limits: ReplicaLimits): FieldError[] {
  const errors: FieldError[] = []
  if (!TimeZone.find(schedule.timezone)) {
    errors.push({ path: '/timezone', message: `'${schedule.timezone}' is not a known IANA time zone (e.g. Europe/Berlin)` })
  }
  const seen = new Set<string>()
  schedule.windows.forEach((window, index) => {
    const at = (field: string) => `/windows/${index}/${field}`
    if (seen.has(window.name)) errors.push({ path: at('name'), message: `duplicate window name '${window.name}'` })
    seen.add(window.name)

    const start = checkCron(window.start, at('start'), errors)
    if (window.end !== undefined && window.duration_minutes !== undefined) {
      errors.push({ path: at('end'), message: 'give either end or duration_minutes, not both' })
    } else if (window.end === undefined && window.duration_minutes === undefined) {
      errors.push({ path: at('end'), message: 'give end or duration_minutes' })
    }
    if (window.end !== undefined) {
      const end = checkCron(window.end, at('end'), errors)
      if (start && end && sameCron(start, end)) {
        errors.push({ path: at('end'), message: 'end is the same as start: the window would never be open' })
      }
    }
    const duration = window.duration_minutes
    if (duration !== undefined && (!Number.isInteger(duration) || duration < 1 || duration > MAX_DURATION_MINUTES)) {
      errors.push({ path: at('duration_minutes'), message: `must be a whole number of minutes from 1 to ${MAX_DURATION_MINUTES}` })
    }

    for (const field of ['min_replicas', 'max_replicas'] as const) {
      const value = window[field]
      if (!Number.isInteger(value) || value < limits.minReplicas || value > limits.maxReplicas) {
        errors.push({ path: at(field), message: `must be a whole number from ${limits.minReplicas} to ${limits.maxReplicas}` })
      }
    }
    if (window.min_replicas > window.max_replicas) {
      errors.push({ path: at('min_replicas'), message: `min_replicas (${window.min_replicas}) is above max_replicas (${window.max_replicas})` })
    }
  })
  return errors
}

function checkCron(source: string, path: string, errors: FieldError[]): CronExpression | null {
  try {
    const cron = parseCron(source)
    // e.g. `0 0 31 4 *`: April has no 31st. Eight years from any day include every date there is.
    if (nextWall(cron, Date.UTC(2024, 0, 1)) === null) {
      errors.push({ path, message: `'${source}' never matches any date` })
      return null
    }
    return cron
  } catch (error) {
    if (!(error instanceof CronSyntaxError)) throw error
    errors.push({ path, message: `'${source}' is not a 5-field cron expression: ${error.message}` })
    return null
  }
}

/** A window with its expressions parsed, able to say when an opening closes. */
class CompiledWindow {
  readonly start: CronExpression
  readonly end: CronExpression | null

  constructor(
    readonly window: ScalingWindow,
    readonly zone: TimeZone,
  ) {
    this.start = parseCron(window.start)
    this.end = window.end === undefined ? null : parseCron(window.end)
  }

  /** When the opening that began at `start` closes. */
  closeOf(start: Occurrence): number {
    if (this.end === null) return start.instant + (this.window.duration_minutes ?? 0) * 60_000
    const wall = nextWall(this.end, start.wall)
    // An end that never matches again leaves the window open; validation refuses such expressions.
    return wall === null ? Number.POSITIVE_INFINITY : this.zone.instantOf(wall)
  }

  /**
   * Open at `at`? Only the latest start before `at` matters: later starts close no earlier, and an
   * earlier opening still open at `at` means the latest start belongs to it (end mode) or lasts
   * longer (duration mode).
   */
  isOpen(at: number): boolean {
    const start = previousOccurrence(this.start, this.zone, at)
    return start !== null && at < this.closeOf(start)
  }

  /** The intervals [open, close) during which the window is open, intersecting [from, to]. */
  openings(from: number, to: number): [number, number][] {
    const intervals: [number, number][] = []
    const add = (start: Occurrence) => {
      const close = this.closeOf(start)
      const last = intervals.at(-1)
      // Starts while already open extend (or leave unchanged) the current opening.
      if (last && start.instant <= last[1]) last[1] = Math.max(last[1], close)
      else intervals.push([start.instant, close])
    }
    const before = previousOccurrence(this.start, this.zone, from)
    if (before && this.closeOf(before) > from) add(before)
    for (let start = nextOccurrence(this.start, this.zone, from); start && start.instant <= to; ) {
      add(start)
      start = nextOccurrence(this.start, this.zone, start.instant)
    }
    return intervals.filter(([open, close]) => open < close)
  }
}

function compile(schedule: ScalingSchedule): CompiledWindow[] {
  const zone = TimeZone.get(schedule.timezone)
  return schedule.windows.map((window) => new CompiledWindow(window, zone))
}

function combine(open: ScalingWindow[], base: ReplicaBounds): EffectiveBounds {
  if (open.length === 0) return { min: base.min, max: base.max, windows: [] }
  return {
    min: Math.max(...open.map((window) => window.min_replicas)),
    max: Math.max(...open.map((window) => window.max_replicas)),
    windows: open.map((window) => window.name),
  }
}

/** The bounds that hold at `at`: the base ones outside every window, the windows' ones inside. */
export function effectiveBounds(schedule: ScalingSchedule, base: ReplicaBounds, at: Date): EffectiveBounds {
  const instant = at.getTime()
  const open = compile(schedule).filter((window) => window.isOpen(instant))
  return combine(
    open.map((window) => window.window),
    base,
  )
}

/**
 * The effective bounds at `from`, then every change up to and including `to`, each with the window
 * edges that caused it. A window edge that changes nothing (a window opening with the bounds that
 * already hold under a wider one) still changes the list of open windows, so it is listed too.
 */
export function timeline(schedule: ScalingSchedule, base: ReplicaBounds, from: Date, to: Date): TimelineEntry[] {
  const start = from.getTime()
  const end = to.getTime()
  const windows = compile(schedule)
  const edges = new Map<number, { index: number; event: 'open' | 'close' }[]>()
  const addEdge = (at: number, index: number, event: 'open' | 'close') => {
    if (at <= start || at > end) return
    const list = edges.get(at)
    if (list) list.push({ index, event })
    else edges.set(at, [{ index, event }])
  }
  const open = new Set<number>()
  windows.forEach((window, index) => {
    for (const [opening, closing] of window.openings(start, end)) {
      if (opening <= start) open.add(index)
      addEdge(opening, index, 'open')
      addEdge(closing, index, 'close')
    }
  })
  const state = () =>
    combine(
      windows.filter((_, index) => open.has(index)).map((window) => window.window),
      base,
    )
  const entries: TimelineEntry[] = [{ at: new Date(start), ...state(), cause: [] }]
  for (const at of [...edges.keys()].sort((a, b) => a - b)) {
    const changes = edges.get(at) ?? []
    for (const { index, event } of changes) {
      if (event === 'open') open.add(index)
      else open.delete(index)
    }
    const current = state()
    const previous = entries.at(-1) as TimelineEntry
    if (current.min === previous.min && current.max === previous.max && current.windows.join('\n') === previous.windows.join('\n')) continue
    entries.push({
      at: new Date(at),
      ...current,
      cause: changes.map(({ index, event }) => ({ window: (windows[index] as CompiledWindow).window.name, event })),
    })
  }
  return entries
}
