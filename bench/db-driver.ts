/**
 * TCP driver micro-benchmark: a point select by primary key on the same table, through mysql2's pool
 * (the driver src/db/client.ts uses, with drizzle's text protocol `query`, and its prepared `execute`)
 * and through Bun's built-in SQL client. Sequential (latency) and with 16 in flight (throughput).
 * `bun bench/db-driver.ts` on its own, or as part of `bun run bench`.
 */
import mysql from 'mysql2/promise'
import { ensureDatabaseExists } from '../src/db/migrate'
import { benchDatabase, fixed, type LoadResult, markdownTable, runLoad } from './support'

const ROWS = 10_000
const POOL = 10

export interface DriverResult extends LoadResult {
  driver: string
  concurrency: number
}

export async function benchDbDrivers(serverUrl: string, durationMs = 3_000): Promise<DriverResult[]> {
  const url = `${serverUrl}bench_driver`
  await ensureDatabaseExists(url)
  const pool = mysql.createPool({ uri: url, connectionLimit: POOL })
  await pool.query('DROP TABLE IF EXISTS bench_kv')
  await pool.query('CREATE TABLE bench_kv (id BIGINT PRIMARY KEY, name VARCHAR(63) NOT NULL, payload VARCHAR(255) NOT NULL)')
  for (let start = 1; start <= ROWS; start += 1_000) {
    const values = Array.from({ length: 1_000 }, (_, i) => [start + i, `name-${start + i}`, 'x'.repeat(200)])
    await pool.query('INSERT INTO bench_kv (id, name, payload) VALUES ?', [values])
  }
  const bunSql = new Bun.SQL(url, { max: POOL })
  const randomId = () => 1 + Math.floor(Math.random() * ROWS)
  const drivers: [string, () => Promise<boolean>][] = [
    ['mysql2 query (text protocol, what drizzle uses)', async () => {
      const [rows] = await pool.query('SELECT id, name, payload FROM bench_kv WHERE id = ?', [randomId()])
      return (rows as unknown[]).length === 1
    }],
    ['mysql2 execute (prepared)', async () => {
      const [rows] = await pool.execute('SELECT id, name, payload FROM bench_kv WHERE id = ?', [randomId()])
      return (rows as unknown[]).length === 1
    }],
    ['Bun.SQL', async () => (await bunSql`SELECT id, name, payload FROM bench_kv WHERE id = ${randomId()}`).length === 1],
  ]
  const results: DriverResult[] = []
  try {
    for (const concurrency of [1, 16]) {
      for (const [driver, operation] of drivers) {
        results.push({ driver, concurrency, ...(await runLoad(operation, { concurrency, durationMs, warmupMs: 500 })) })
      }
    }
  } finally {
    await bunSql.close()
    await pool.query('DROP DATABASE bench_driver')
    await pool.end()
  }
  return results
}

export function driverTable(results: DriverResult[]) {
  return markdownTable(
    ['driver', 'in flight', 'ops/s', 'p50 ms', 'p99 ms', 'errors'],
    results.map((r) => [r.driver, r.concurrency, Math.round(r.perSecond), fixed(r.p50, 3), fixed(r.p99, 3), r.errors]),
  )
}

if (import.meta.main) {
  const database = await benchDatabase()
  try {
    console.log(driverTable(await benchDbDrivers(database.serverUrl)))
  } finally {
    await database.stop()
  }
}
