/**
 * API throughput and latency of each route in routes.ts, measured in the same run against every
 * server on the same database: two ceilings (a bare Bun.serve over Bun's SQL client and over mysql2,
 * bench/ceiling.ts), the original's stack doing the same work (FastAPI + uvicorn + aiomysql,
 * bench/peer_fastapi.py; reads only, skipped when Debian's packages are missing), the app as shipped
 * (auth on, its verified-token cache on) and the app with auth off. The ceilings and the peer look the
 * token up on every request, as the original does. Each row's ratio is the app's req/s over its own.
 */
import type { Subprocess } from 'bun'
import { mysqlDriver } from '../src/config'
import { freePort } from '../src/db/local-server'
import { poolOf, sqlOf } from './ceiling'
import { type AppRequest, type BenchRoute, ROUTES } from './routes'
import { fixed, type LoadResult, markdownTable, runLoad, waitFor200 } from './support'

export interface ApiResult extends LoadResult {
  route: string
  target: string
  /** The app's req/s over this row's. */
  appRatio: number
}

interface Target {
  name: string
  base: string
  headers: Record<string, string>
  process: Subprocess
}

const TOKEN = `bench-admin-token-${crypto.randomUUID()}`
const POOL_SIZE = '10'
const APP = 'app'
const PEER = 'FastAPI + uvicorn + aiomysql'
/** Debian's interpreter: python3-fastapi, python3-uvicorn and python3-aiomysql install for it. */
const PEER_PYTHON = process.env.BENCH_PEER_PYTHON ?? '/usr/bin/python3'

/** Why the peer cannot run here, or undefined when it can. */
function peerMissing(): string | undefined {
  try {
    if (Bun.spawnSync([PEER_PYTHON, '-c', 'import fastapi, uvicorn, aiomysql'], { stdout: 'ignore', stderr: 'ignore' }).exitCode === 0) return undefined
  } catch {
    // No such interpreter: the same answer.
  }
  return `${PEER_PYTHON} cannot import fastapi, uvicorn and aiomysql (apt-get install python3-fastapi python3-uvicorn python3-aiomysql)`
}

async function startTarget(name: string, command: string[], env: Record<string, string>, headers: Record<string, string> = {}): Promise<Target> {
  const port = await freePort()
  const child = Bun.spawn(command, { env: { ...env, PORT: String(port), DB_POOL_SIZE: POOL_SIZE }, stdout: 'ignore', stderr: 'inherit' })
  const base = `http://127.0.0.1:${port}`
  // The ceilings have no /healthcheck; any answer from the routes means they listen.
  const probe = name.startsWith('ceiling') ? `${base}/api/v1/environment/none` : `${base}/healthcheck`
  const deadline = performance.now() + 30_000
  while ((await fetch(probe).then((r) => r.status).catch(() => 0)) === 0) {
    if (performance.now() > deadline) throw new Error(`${name} did not start`)
    await Bun.sleep(20)
  }
  if (name.startsWith(APP) && !(await waitFor200(`${base}/readyz`, 30_000))) throw new Error(`${name} is not ready`)
  return { name, base, headers: { 'content-type': 'application/json', ...headers }, process: child }
}

export async function benchApi(options: {
  databaseUrl: string
  appCommand: string[]
  concurrency: number
  durationMs: number
  warmupMs: number
  /** A subset of routes.ts (bench/api-drivers.ts measures the reads only). */
  routes?: readonly BenchRoute[]
}): Promise<ApiResult[]> {
  const common = { PATH: process.env.PATH ?? '', DATABASE_URL: options.databaseUrl, LOG_LEVEL: 'info', ENABLE_OTEL: 'false' }
  // One client address and token make every request: the per-address and per-token limits would refuse most.
  // The app runs on the driver DB_DRIVER names here (`DB_DRIVER=mysql2 bun run bench` measures the other one).
  const appEnv = { ...common, RATE_LIMIT_PER_TOKEN: '0', RATE_LIMIT_PER_IP: '0', DB_DRIVER: mysqlDriver() }
  const bearer = { authorization: `Bearer ${TOKEN}` }
  // The first app migrates the database; the others start after it.
  const app = await startTarget(APP, options.appCommand, { ...appEnv, ENV: 'bench', ML_SERVE_BOOTSTRAP_ADMIN_TOKEN: TOKEN }, bearer)
  const ceiling = [process.execPath, `${import.meta.dir}/ceiling.ts`]
  const targets = [
    await startTarget('ceiling, Bun SQL', ceiling, { ...common, CEILING_DRIVER: 'bun-sql' }, bearer),
    await startTarget('ceiling, mysql2', ceiling, { ...common, CEILING_DRIVER: 'mysql2' }, bearer),
  ]
  const missing = peerMissing()
  if (missing) console.error(`bench: the ${PEER} row is skipped: ${missing}`)
  else targets.push(await startTarget(PEER, [PEER_PYTHON, `${import.meta.dir}/peer_fastapi.py`], common, bearer))
  targets.push(app, await startTarget(`${APP}, auth off`, options.appCommand, { ...appEnv, ENV: 'local', AUTH_ENABLED: 'false', MIGRATE_ON_START: 'false' }))
  const results: ApiResult[] = []
  const seedPool = poolOf(options.databaseUrl, 1)
  const appRequest: AppRequest = async (path, body) => {
    const response = await fetch(`${app.base}${path}`, { method: 'POST', headers: app.headers, body: JSON.stringify(body) })
    if (!response.ok) throw new Error(`seeding ${path}: ${response.status} ${await response.text()}`)
  }
  try {
    for (const route of options.routes ?? ROUTES) {
      await route.seed?.(appRequest, sqlOf(seedPool))
      const rows: (LoadResult & { target: string })[] = []
      for (const target of targets) {
        // The peer serves the reads only.
        if (target.name === PEER && route.method !== 'GET') continue
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
        rows.push({ target: target.name, ...result })
      }
      const appPerSecond = rows.find((row) => row.target === APP)?.perSecond ?? Number.NaN
      for (const row of rows) results.push({ route: route.label, ...row, appRatio: appPerSecond / row.perSecond })
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
    ['route', 'server', 'req/s', 'p50 ms', 'p99 ms', 'app ÷ this', 'errors'],
    results.map((r) => [r.route, r.target, Math.round(r.perSecond), fixed(r.p50, 2), fixed(r.p99, 2), `${fixed(r.appRatio, 2)}×`, r.errors]),
  )
}

/** The goals of the reads: the app's req/s over the faster ceiling's (≥ 0.8) and over the peer's (≥ 5). */
export function readGoals(results: ApiResult[]) {
  const reads = [...new Set(results.filter((r) => r.route.startsWith('GET ')).map((r) => r.route))]
  return reads.map((route) => {
    const rows = results.filter((r) => r.route === route)
    const fastestCeiling = Math.min(...rows.filter((r) => r.target.startsWith('ceiling')).map((r) => r.appRatio))
    return { route, vsCeiling: fastestCeiling, vsPeer: rows.find((r) => r.target === PEER)?.appRatio ?? Number.NaN }
  })
}
