/**
 * The database is stopped during a burst of requests and started again: requests fail with 503 in
 * the gap (never 500), and the same process recovers by itself. Uses its own throwaway server, since
 * it stops it; bounded in time, 127.0.0.1 only.
 */
import { afterAll, expect, test } from 'bun:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createApp } from '../../src/app'
import { createClusterDrivers } from '../../src/cluster'
import { loadConfig, mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { freePort, type LocalServer, startLocalServer } from '../../src/db/local-server'
import { ensureDatabaseExists, runMigrations } from '../../src/db/migrate'
import { createLogger } from '../../src/lib/logger'
import { ensureBootstrapAdmin } from '../../src/modules/token/service'
import { environmentBody } from '../support/fixtures'

const dataDir = mkdtempSync(join(tmpdir(), 'darwin-outage-'))
const port = await freePort()
let server: LocalServer = await startLocalServer({ dataDir, port, preferContainer: false })
const url = `${server.url}outage`
await ensureDatabaseExists(url)
const database = connectDatabase({ driver: mysqlDriver(), url, poolSize: 4 })
await runMigrations(database)
const token = `outage-admin-token-${crypto.randomUUID()}`
await ensureBootstrapAdmin(database.db, 'admin', token)
const config = loadConfig({ ENV: 'test', DATABASE_URL: url })
const app = createApp({ config, database, log: createLogger({ level: 'silent' }), clusterDrivers: createClusterDrivers(config) })
afterAll(async () => {
  await database.close()
  await server.stop()
  rmSync(dataDir, { recursive: true, force: true })
})

let counter = 0
async function burst(size: number): Promise<number[]> {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  return Promise.all(
    Array.from({ length: size }, (_, i) =>
      app
        .handle(
          i % 2 === 0
            ? new Request('http://localhost/api/v1/environment', { headers })
            : new Request('http://localhost/api/v1/environment', { method: 'POST', headers, body: JSON.stringify(environmentBody(`burst-${counter++}`)) }),
        )
        .then((r) => r.status),
    ),
  )
}

test('database stopped mid-burst: 503s in the gap, no 500, recovery without a restart', async () => {
  const statuses: number[] = []
  const before = await burst(20)
  statuses.push(...before)
  expect(before.every((s) => s === 200 || s === 201)).toBe(true)

  await server.stop()
  const during = [...(await burst(20)), ...(await burst(20))]
  statuses.push(...during)
  expect(during.every((s) => s === 503)).toBe(true)
  const ready = await app.handle(new Request('http://localhost/readyz'))
  expect(ready.status).toBe(503)

  server = await startLocalServer({ dataDir, port, preferContainer: false })
  let recovered = false
  const deadline = Date.now() + 30_000
  while (!recovered && Date.now() < deadline) {
    const after = await burst(10)
    statuses.push(...after)
    recovered = after.every((s) => s === 200 || s === 201)
    if (!recovered) await Bun.sleep(200)
  }
  expect(recovered).toBe(true)
  expect(statuses.filter((s) => s >= 500 && s !== 503)).toEqual([])
  console.log(
    `database outage: ${statuses.length} requests, 1 outage injected, ${statuses.filter((s) => s === 503).length} × 503, ${statuses.filter((s) => s >= 500 && s !== 503).length} other 5xx`,
  )
}, 120_000)
