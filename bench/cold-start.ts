/**
 * Cold start: from spawning the process to its first 200 on /healthcheck (listening) and on
 * /readyz (database reached), median of a few runs, and its resident memory once idle.
 * Migrations are already applied, so start-up includes only their "nothing to do" check.
 */
import { freePort } from '../src/db/local-server'
import { fixed, markdownTable, rssMiB, waitFor200 } from './support'

export interface ColdStartResult {
  label: string
  healthMs: number
  readyMs: number
  rssMiB: number
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

export async function coldStart(label: string, command: string[], env: Record<string, string>, runs = 3): Promise<ColdStartResult> {
  const health: number[] = []
  const ready: number[] = []
  const rss: number[] = []
  for (let i = 0; i < runs; i++) {
    const port = await freePort()
    const started = performance.now()
    const child = Bun.spawn(command, { env: { ...env, PORT: String(port) }, stdout: 'ignore', stderr: 'inherit' })
    try {
      if (!(await waitFor200(`http://127.0.0.1:${port}/healthcheck`, 30_000, 2))) throw new Error(`${label}: no 200 from /healthcheck`)
      health.push(performance.now() - started)
      if (!(await waitFor200(`http://127.0.0.1:${port}/readyz`, 30_000, 2))) throw new Error(`${label}: no 200 from /readyz`)
      ready.push(performance.now() - started)
      await Bun.sleep(1_000)
      rss.push(rssMiB(child.pid))
    } finally {
      child.kill('SIGTERM')
      await child.exited
    }
  }
  return { label, healthMs: median(health), readyMs: median(ready), rssMiB: median(rss) }
}

export function coldStartTable(results: ColdStartResult[]) {
  return markdownTable(
    ['command', 'first 200 /healthcheck (ms)', 'first 200 /readyz (ms)', 'idle RSS (MiB)'],
    results.map((r) => [r.label, fixed(r.healthMs, 0), fixed(r.readyMs, 0), fixed(r.rssMiB, 0)]),
  )
}
