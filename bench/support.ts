/** What every benchmark shares: a database server, a load loop, percentiles, markdown tables. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startLocalServer } from '../src/db/local-server'

export interface BenchDatabase {
  /** mysql://…/ of the server, no database selected. */
  serverUrl: string
  stop(): Promise<void>
}

/** BENCH_DATABASE_URL's server, else a throwaway mariadbd/mysqld (the same as the tests use). */
export async function benchDatabase(): Promise<BenchDatabase> {
  if (process.env.BENCH_DATABASE_URL) {
    const url = new URL(process.env.BENCH_DATABASE_URL)
    url.pathname = '/'
    return { serverUrl: url.toString(), stop: async () => {} }
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'darwin-ml-serve-bench-db-'))
  const server = await startLocalServer({ dataDir, preferContainer: false })
  return {
    serverUrl: server.url,
    stop: async () => {
      await server.stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface LoadResult {
  requests: number
  errors: number
  perSecond: number
  p50: number
  p99: number
}

export function percentile(sorted: Float64Array | number[], p: number) {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/**
 * `concurrency` loops each awaiting `operation(n)` back to back for `durationMs` after a warm-up
 * (not counted). An operation that throws or resolves false counts as an error.
 */
export async function runLoad(
  operation: (n: number) => Promise<boolean>,
  options: { concurrency: number; durationMs: number; warmupMs: number },
): Promise<LoadResult> {
  let n = 0
  const loop = async (until: number, latencies?: number[], counts?: { errors: number }) => {
    while (performance.now() < until) {
      const started = performance.now()
      const ok = await operation(n++).catch(() => false)
      if (latencies) latencies.push(performance.now() - started)
      if (!ok && counts) counts.errors++
    }
  }
  const warmupUntil = performance.now() + options.warmupMs
  await Promise.all(Array.from({ length: options.concurrency }, () => loop(warmupUntil)))
  const latencies: number[] = []
  const counts = { errors: 0 }
  const started = performance.now()
  await Promise.all(Array.from({ length: options.concurrency }, () => loop(started + options.durationMs, latencies, counts)))
  const elapsed = (performance.now() - started) / 1000
  const sorted = Float64Array.from(latencies).sort()
  return { requests: latencies.length, errors: counts.errors, perSecond: latencies.length / elapsed, p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}

export function markdownTable(headers: string[], rows: (string | number)[][]) {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

export const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—')

/** Polls `url` until it answers 200 (true) or `timeoutMs` passes (false). */
export async function waitFor200(url: string, timeoutMs: number, intervalMs = 5) {
  const deadline = performance.now() + timeoutMs
  while (performance.now() < deadline) {
    if ((await fetch(url).then((r) => r.status).catch(() => 0)) === 200) return true
    await Bun.sleep(intervalMs)
  }
  return false
}

/** Resident memory of a process, from /proc (Linux). */
export function rssMiB(pid: number) {
  const status = Bun.spawnSync(['cat', `/proc/${pid}/status`]).stdout.toString()
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
  return kib / 1024
}
