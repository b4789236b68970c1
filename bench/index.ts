/**
 * `bun run bench`: builds the artefact, provisions a throwaway database server (or uses
 * BENCH_DATABASE_URL's), and prints markdown tables — the goals, cold start, API vs the ceilings and
 * the original's stack, deploy overhead, DB drivers, render, scaling tick — to paste into the
 * README's Benchmarks section. Everything on 127.0.0.1, bounded in time (about four minutes).
 * BENCH_DURATION_MS / BENCH_CONCURRENCY tune the load runs.
 */
import { existsSync } from 'node:fs'
import { cpus } from 'node:os'
import { join, resolve } from 'node:path'
import { ensureDatabaseExists } from '../src/db/migrate'
import { apiTable, benchApi, readGoals } from './api'
import { coldStart, coldStartTable } from './cold-start'
import { benchDbDrivers, driverTable } from './db-driver'
import { benchDeploy, deployTable } from './deploy'
import { benchRender, renderTable } from './render'
import { benchDatabase, fixed, markdownTable } from './support'

const root = resolve(import.meta.dir, '..')
const binary = join(root, 'dist/darwin-ml-serve')
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 5_000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32)

const build = Bun.spawnSync([process.execPath, join(root, 'scripts/build.ts')], { stdout: 'ignore', stderr: 'inherit' })
if (build.exitCode !== 0 || !existsSync(binary)) throw new Error('npm run build failed')

const database = await benchDatabase()
try {
  const databaseUrl = `${database.serverUrl}bench_api`
  await ensureDatabaseExists(databaseUrl)
  const env = { PATH: process.env.PATH ?? '', ENV: 'bench', DATABASE_URL: databaseUrl, ENABLE_OTEL: 'false', ML_SERVE_BOOTSTRAP_ADMIN_TOKEN: `bench-${crypto.randomUUID()}` }

  console.log(`# Darwin ML Serve benchmarks — ${new Date().toISOString().slice(0, 10)}, Bun ${Bun.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}\n`)
  const cold = []
  // The first run migrates the fresh database; the measured ones find nothing to apply.
  cold.push(await coldStart('bun src/index.ts (npm start)', [process.execPath, join(root, 'src/index.ts')], env))
  const binaryCold = await coldStart('dist/darwin-ml-serve (the image\'s binary)', [binary], env)
  cold.push(binaryCold)
  cold.push(await coldStart('dist/darwin-ml-serve, ENABLE_OTEL=true', [binary], { ...env, ENABLE_OTEL: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }))
  const api = await benchApi({ databaseUrl, appCommand: [binary], concurrency, durationMs, warmupMs: 1_000 })
  const deploy = await benchDeploy(database.serverUrl)

  const goal = (measured: string, target: string, met: boolean) => [measured, target, met ? 'met' : 'missed']
  const goals = [
    ...readGoals(api).flatMap(({ route, vsCeiling, vsPeer }) => [
      [`${route}: app ÷ the faster ceiling`, ...goal(`${fixed(vsCeiling, 2)}×`, '≥ 0.8×', vsCeiling >= 0.8)],
      [`${route}: app ÷ the original's stack`, ...goal(`${fixed(vsPeer, 2)}×`, '≥ 5×', vsPeer >= 5)],
    ]),
    ['binary: exec to the first /healthcheck 200', ...goal(`${fixed(binaryCold.healthMs, 0)} ms`, '≤ 150 ms', binaryCold.healthMs <= 150)],
    ['binary: idle RSS', ...goal(`${fixed(binaryCold.rssMiB, 0)} MiB`, '≤ 64 MiB', binaryCold.rssMiB <= 64)],
    ['deploy overhead (all but the cluster call), 1 in flight, p50', ...goal(`${fixed(deploy.p50, 1)} ms`, '< 10 ms', deploy.p50 < 10)],
  ]
  console.log(`## Goals\n\n${markdownTable(['measure', 'measured', 'goal', 'result'], goals)}\n`)
  console.log(`## Cold start (median of 3)\n\n${coldStartTable(cold)}\n`)
  console.log(`## API (${concurrency} concurrent keep-alive clients, ${durationMs / 1000} s per row, after a 1 s warm-up)\n\n${apiTable(api)}\n`)
  console.log(`## Deploy overhead (in process, auth on, a cluster that answers at once; after 10 untimed)\n\n${deployTable(deploy)}\n`)

  console.log(`## Database driver: point select by primary key (3 s per row)\n\n${driverTable(await benchDbDrivers(database.serverUrl))}\n`)
} finally {
  await database.stop()
}

console.log(`## Render: one serve in one environment (2,000 calls each, after 200 untimed)\n\n${renderTable(benchRender())}\n`)

// The tick benchmark is its own script (it is also run alone with other sizes); its table as printed.
const tick = Bun.spawnSync([process.execPath, join(import.meta.dir, 'scaling-tick.ts')], { stdout: 'pipe', stderr: 'inherit' })
if (tick.exitCode !== 0) throw new Error('bench/scaling-tick.ts failed')
console.log(`## ${tick.stdout.toString().trim()}`)
