/**
 * API throughput and latency of each route in routes.ts, measured in the same run against three
 * servers on the same database: the ceiling (bare Bun.serve + mysql2, bench/ceiling.ts), the app as
 * shipped (auth on: one more indexed read per request for the token), and the app with auth off
 * (the framework, validation, envelopes and access log alone). The ratio is app / ceiling.
 */
import type { Subprocess } from 'bun'
import { freePort } from '../src/db/local-server'
import { poolOf, sqlOf } from './ceiling'
import { type AppRequest, ROUTES } from './routes'
import { fixed, type LoadResult, markdownTable, runLoad, waitFor200 } from './support'

export interface ApiResult extends LoadResult {
  route: string
  target: string
  ratio: number
}

interface Target {
  name: string
  base: string
  headers: Record<string, string>
  process: Subprocess
}

const TOKEN = `bench-admin-token-${crypto.randomUUID()}`
const POOL_SIZE = '10'

async function startTarget(name: string, command: string[], env: Record<string, string>, headers: Record<string, string> = {}): Promise<Target> {
  const port = await freePort()
  const child = Bun.spawn(command, { env: { ...env, PORT: String(port), DB_POOL_SIZE: POOL_SIZE }, stdout: 'ignore', stderr: 'inherit' })
  const base = `http://127.0.0.1:${port}`
  // The ceiling has no /healthcheck; any answer from the app's routes means it listens.
  const probe = name === 'ceiling' ? `${base}/api/v1/environment/none` : `${base}/healthcheck`
  const deadline = performance.now() + 30_000
  while ((await fetch(probe).then((r) => r.status).catch(() => 0)) === 0) {
    if (performance.now() > deadline) throw new Error(`${name} did not start`)
    await Bun.sleep(20)
  }
  if (name !== 'ceiling' && !(await waitFor200(`${base}/readyz`, 30_000))) throw new Error(`${name} is not ready`)
  return { name, base, headers: { 'content-type': 'application/json', ...headers }, process: child }
}

export async function benchApi(options: { databaseUrl: string; appCommand: string[]; concurrency: number; durationMs: number; warmupMs: number }): Promise<ApiResult[]> {
  const common = { PATH: process.env.PATH ?? '', DATABASE_URL: options.databaseUrl, LOG_LEVEL: 'info', ENABLE_OTEL: 'false' }
  // The first app migrates the database; the others start after it.
  const app = await startTarget('app', options.appCommand, { ...common, ENV: 'bench', ML_SERVE_BOOTSTRAP_ADMIN_TOKEN: TOKEN }, { authorization: `Bearer ${TOKEN}` })
  const targets = [
    await startTarget('ceiling', [process.execPath, `${import.meta.dir}/ceiling.ts`], common),
    app,
    await startTarget('app, auth off', options.appCommand, { ...common, ENV: 'local', AUTH_ENABLED: 'false', MIGRATE_ON_START: 'false' }),
  ]
  const results: ApiResult[] = []
  const seedPool = poolOf(options.databaseUrl, 1)
  const appRequest: AppRequest = async (path, body) => {
    const response = await fetch(`${app.base}${path}`, { method: 'POST', headers: app.headers, body: JSON.stringify(body) })
    if (!response.ok) throw new Error(`seeding ${path}: ${response.status} ${await response.text()}`)
  }
  try {
    for (const route of ROUTES) {
      await route.seed?.(appRequest, sqlOf(seedPool))
      let ceiling: LoadResult | undefined
      for (const target of targets) {
        const run = `b${crypto.randomUUID().slice(0, 4).replace(/[^a-z0-9]/g, 'x')}`
        const expected = route.ceiling.status
        const result = await runLoad(
          async (n) => {
            const body = route.body?.(n, run)
            const response = await fetch(`${target.base}${route.path(n, run)}`, {
              method: route.method,
              headers: target.headers,
              body: body === undefined ? undefined : JSON.stringify(body),
            })
            await response.arrayBuffer()
            return response.status === expected
          },
          options,
        )
        ceiling ??= result
        results.push({ route: route.label, target: target.name, ...result, ratio: result.perSecond / ceiling.perSecond })
      }
    }
  } finally {
    await seedPool.end()
    for (const target of targets) target.process.kill('SIGTERM')
    await Promise.all(targets.map((t) => t.process.exited))
  }
  return results
}

export function apiTable(results: ApiResult[]) {
  return markdownTable(
    ['route', 'server', 'req/s', 'p50 ms', 'p99 ms', 'vs ceiling', 'errors'],
    results.map((r) => [r.route, r.target, Math.round(r.perSecond), fixed(r.p50, 2), fixed(r.p99, 2), fixed(r.ratio, 2), r.errors]),
  )
}
