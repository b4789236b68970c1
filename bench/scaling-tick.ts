/**
 * Scaling tick benchmark: one tick over N deployed serves with schedules, with the cluster and the
 * store faked in memory (so the figures are the tick's own cost: listing, window arithmetic,
 * comparing, calling set-bounds). For each N: a tick where every target changes, then a tick one
 * minute later where nothing does — which must make no cluster call. Median of several runs, each on
 * a new day so occurrences are recomputed rather than served from the last run's caches.
 *
 *   ./node_modules/.bin/bun bench/scaling-tick.ts [sizes…]
 */
import { runTick, type ScalingTarget } from '../src/modules/scaling/scheduler'
import type { ScalingSchedule } from '../src/modules/scaling/windows'
import { fakeScaling } from '../test/support/scaling'

const ZONES = ['Europe/Berlin', 'America/New_York', 'Australia/Sydney', 'Asia/Kolkata', 'UTC'] as const
const DAY = 86_400_000
const RUNS = 7
const T = new Date('2025-06-02T23:30:00Z')
const base = { min: 3, max: 10 }

/** A night window open at T (varied per target), an office-hours window and an hourly burst closed at T and T + 1 min. */
function scheduleFor(i: number): ScalingSchedule {
  const timezone = ZONES[i % ZONES.length] as string
  const localHour = Number(new Intl.DateTimeFormat('en-US', { timeZone: timezone, hour: 'numeric', hourCycle: 'h23' }).format(T))
  const start = (localHour + 23 - (i % 3)) % 24
  return {
    timezone,
    windows: [
      { name: 'night', start: `${i % 30} ${start} * * *`, end: `0 ${(start + 8) % 24} * * *`, min_replicas: 1, max_replicas: 2 },
      { name: 'office', start: '0 9 * * MON-FRI', end: '0 17 * * MON-FRI', min_replicas: 6, max_replicas: 30 },
      { name: 'burst', start: `${i % 20} * * * *`, duration_minutes: 10, min_replicas: 2, max_replicas: 12 },
    ],
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number

async function measure(size: number) {
  const targets: ScalingTarget[] = Array.from({ length: size }, (_, i) => ({
    serve: `serve-${i}`,
    env: 'prod',
    schedule: scheduleFor(i),
    base,
    applied: base,
  }))
  const fake = fakeScaling(targets)
  const changing: number[] = []
  const quiet: number[] = []
  let changedCalls = 0
  let quietCalls = 0
  // Run 0 warms the JIT and is not counted.
  for (let run = 0; run <= RUNS; run++) {
    for (const target of fake.targets) target.applied = base
    const now = new Date(T.getTime() + run * DAY)

    fake.calls.length = 0
    let started = performance.now()
    const first = await runTick({ ...fake, now })
    if (run > 0) changing.push(performance.now() - started)
    changedCalls = fake.calls.length
    if (first.changed !== size) throw new Error(`expected every target to change, got ${JSON.stringify(first)}`)

    fake.calls.length = 0
    started = performance.now()
    const second = await runTick({ ...fake, now: new Date(now.getTime() + 60_000) })
    if (run > 0) quiet.push(performance.now() - started)
    quietCalls = fake.calls.length
    if (second.unchanged !== size) throw new Error(`expected no change, got ${JSON.stringify(second)}`)
  }
  return { size, changing: median(changing), changedCalls, quiet: median(quiet), quietCalls }
}

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0)
// Warms the JIT on the code paths before any figure is taken, so the first size is not penalised.
await measure(1_000)
const rows = []
for (const size of sizes.length > 0 ? sizes : [1_000, 2_500, 5_000, 10_000]) rows.push(await measure(size))

const fmt = (ms: number) => ms.toFixed(1)
console.log(`Scaling tick, ${RUNS} runs each (median), Bun ${Bun.version}, 3 windows per schedule, ${ZONES.length} time zones\n`)
console.log('| serves | tick with changes | cluster calls | tick without changes | cluster calls | per serve (changes / none) |')
console.log('| ---: | ---: | ---: | ---: | ---: | ---: |')
for (const row of rows) {
  console.log(
    `| ${row.size.toLocaleString('en-US')} | ${fmt(row.changing)} ms | ${row.changedCalls.toLocaleString('en-US')} | ${fmt(row.quiet)} ms | ${row.quietCalls} | ${((row.changing * 1000) / row.size).toFixed(1)} / ${((row.quiet * 1000) / row.size).toFixed(1)} µs |`,
  )
}
