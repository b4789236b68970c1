/**
 * `bun bench/api-drivers.ts`: the three hot reads of bench/api.ts with the app on each DB_DRIVER, in
 * one run against one database, beside the two ceilings (a bare Bun.serve over Bun SQL and over
 * mysql2). Prints the app's req/s per driver and its ratio to the Bun SQL ceiling, the figures of the
 * README's Storage section. Expects dist/darwin-ml-serve (`npm run build`); BENCH_DURATION_MS,
 * BENCH_CONCURRENCY and BENCH_DATABASE_URL as for `bun run bench`.
 */
import { SQL } from 'bun'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { MYSQL_DRIVERS } from '../src/config'
import { ensureDatabaseExists } from '../src/db/migrate'
import { type ApiResult, benchApi } from './api'
import { ROUTES } from './routes'
import { benchDatabase, fixed, markdownTable } from './support'

const binary = join(resolve(import.meta.dir, '..'), 'dist/darwin-ml-serve')
if (!existsSync(binary)) throw new Error('dist/darwin-ml-serve is missing: npm run build')
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 5_000)
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32)
const reads = ROUTES.filter((route) => route.method === 'GET')

const database = await benchDatabase()
const byDriver = new Map<string, ApiResult[]>()
// A database per driver: each run seeds the same rows.
const names = MYSQL_DRIVERS.map((driver) => `bench_api_${driver.replace('-', '_')}_${Date.now().toString(36)}`)
try {
  for (const [i, driver] of MYSQL_DRIVERS.entries()) {
    const databaseUrl = `${database.serverUrl}${names[i]}`
    await ensureDatabaseExists(databaseUrl)
    // bench/api.ts starts the app with the DB_DRIVER of this process.
    process.env.DB_DRIVER = driver
    byDriver.set(driver, await benchApi({ databaseUrl, appCommand: [binary], concurrency, durationMs, warmupMs: 1_000, routes: reads }))
  }
} finally {
  const admin = new SQL(database.serverUrl)
  for (const name of names) await admin.unsafe(`DROP DATABASE IF EXISTS \`${name}\``)
  await admin.close()
  await database.stop()
}

const rows = reads.flatMap((route) => {
  const perSecond = (driver: string, target: string) => byDriver.get(driver)?.find((r) => r.route === route.label && r.target === target)?.perSecond ?? Number.NaN
  // Each driver's run measured the ceilings too: their mean is the reference of both.
  const ceiling = (target: string) => MYSQL_DRIVERS.reduce((sum, driver) => sum + perSecond(driver, target), 0) / MYSQL_DRIVERS.length
  const bunCeiling = ceiling('ceiling, Bun SQL')
  return MYSQL_DRIVERS.map((driver) => {
    const app = perSecond(driver, 'app')
    return [route.label, driver, Math.round(app), `${fixed(app / bunCeiling, 2)}×`, Math.round(bunCeiling), Math.round(ceiling('ceiling, mysql2'))]
  })
})
console.log(
  `## The app's reads per DB_DRIVER (${concurrency} concurrent keep-alive clients, ${durationMs / 1000} s per row, after a 1 s warm-up)\n\n${markdownTable(
    ['route', 'DB_DRIVER', 'app req/s', 'app ÷ Bun SQL ceiling', 'ceiling, Bun SQL', 'ceiling, mysql2'],
    rows,
  )}\n`,
)
