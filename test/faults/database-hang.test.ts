/**
 * The database stops answering (frozen, not down) during a burst: through a TCP proxy that holds
 * every byte back, as a stopped process, a partition or a lock wait would. Every request answers
 * 503 DATABASE_UNAVAILABLE with Retry-After within the statement bound, /readyz within 2 s, workers
 * return; when the database answers again everything recovers without a restart, and retried writes
 * happen exactly once.
 */
import { afterAll, expect, test } from 'bun:test'
import { createApp, createWorkers } from '../../src/app'
import { createClusterDrivers } from '../../src/cluster'
import { loadConfig, mysqlDriver } from '../../src/config'
import { connectDatabase } from '../../src/db/client'
import { ensureDatabaseExists, runMigrations } from '../../src/db/migrate'
import { createLogger } from '../../src/lib/logger'
import { ensureBootstrapAdmin } from '../../src/modules/token/service'
import { environmentBody } from '../support/fixtures'
import { TcpProxy } from '../support/tcp-proxy'

const serverUrl = new URL(process.env.TEST_DATABASE_SERVER_URL ?? '')
const proxy = await TcpProxy.start({ host: serverUrl.hostname, port: Number(serverUrl.port) })
const name = `hang_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
const direct = new URL(serverUrl)
direct.pathname = `/${name}`
const proxied = new URL(direct)
proxied.hostname = '127.0.0.1'
proxied.port = String(proxy.port)

await ensureDatabaseExists(direct.toString())
const setup = connectDatabase({ driver: mysqlDriver(), url: direct.toString(), poolSize: 1 })
await runMigrations(setup)
const token = `hang-admin-token-${crypto.randomUUID()}`
await ensureBootstrapAdmin(setup.db, 'admin', token)

const STATEMENT_TIMEOUT_MS = 1_000
const config = loadConfig({ ENV: 'test', ENABLE_OTEL: 'false', DATABASE_URL: proxied.toString(), DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS) })
const database = connectDatabase({ driver: mysqlDriver(), url: proxied.toString(), poolSize: 4, statementTimeoutMs: STATEMENT_TIMEOUT_MS })
const context = { config, database, log: createLogger({ level: 'silent' }), clusterDrivers: createClusterDrivers(config) }
const workers = createWorkers(context)
const app = createApp(context, workers)
afterAll(async () => {
  await database.close()
  await setup.db.execute(`DROP DATABASE IF EXISTS \`${name}\``)
  await setup.close()
  await proxy.stop()
})

interface Answer {
  status: number
  ms: number
  retryAfter: string | null
  replayed: boolean
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now()
  const response = await app.handle(
    new Request(`http://localhost${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  )
  await response.arrayBuffer()
  return { status: response.status, ms: performance.now() - started, retryAfter: response.headers.get('retry-after'), replayed: response.headers.get('idempotent-replayed') === 'true' }
}

const writes = Array.from({ length: 10 }, (_, i) => ({ name: `hang-${i}`, key: `hang-key-${i}` }))
const burst = () =>
  Promise.all([
    ...writes.map((w) => call('POST', '/api/v1/environment', environmentBody(w.name), { 'idempotency-key': w.key })),
    ...Array.from({ length: 10 }, () => call('GET', '/api/v1/environment')),
  ])
const environmentsNamedHang = async () =>
  Number(((await setup.db.execute(`select count(*) as n from environments where name like 'hang-%'`)) as unknown as [{ n: number }[]])[0][0]?.n)

test('a database that hangs: bounded 503s, then recovery with every write exactly once', async () => {
  const before = await call('GET', '/api/v1/environment')
  expect(before.status).toBe(200)

  proxy.hang()
  const hangStarted = performance.now()
  const during = await burst()
  const ready = await call('GET', '/readyz')
  const tracker = await workers.deployment.tracker.tick().then(
    () => performance.now() - hangStarted,
    () => performance.now() - hangStarted,
  )
  // Every answer is a 503 that says when to retry, within the statement bound plus a reconnect.
  expect(during.map((a) => a.status)).toEqual(during.map(() => 503))
  expect(during.every((a) => a.retryAfter === '5')).toBe(true)
  const slowest = Math.max(...during.map((a) => a.ms))
  expect(slowest).toBeLessThan(3 * STATEMENT_TIMEOUT_MS + 1_000)
  expect(ready.status).toBe(503)
  expect(ready.ms).toBeLessThan(2_000)
  expect(tracker).toBeLessThan(30_000)

  proxy.resume()
  const recoveryStarted = performance.now()
  let after: Answer[] = []
  for (let round = 0; round < 50; round++) {
    after = await burst()
    if (after.every((a) => a.status === 200 || a.status === 201)) break
    await Bun.sleep(100)
  }
  const recoveryMs = performance.now() - recoveryStarted
  expect(after.map((a) => a.status).sort()).toEqual([...Array(10).fill(200), ...Array(10).fill(201)].sort())
  // The writes refused during the hang never happened; their retries happened once, and retrying again replays.
  expect(await environmentsNamedHang()).toBe(writes.length)
  const replays = await Promise.all(writes.map((w) => call('POST', '/api/v1/environment', environmentBody(w.name), { 'idempotency-key': w.key })))
  expect(replays.every((a) => a.status === 201 && a.replayed)).toBe(true)
  expect(await environmentsNamedHang()).toBe(writes.length)
  console.log(
    `database hang: ${during.length} requests during the hang, all 503 with Retry-After, slowest ${Math.round(slowest)} ms (statement bound ${STATEMENT_TIMEOUT_MS} ms); /readyz 503 in ${Math.round(ready.ms)} ms; recovered ${Math.round(recoveryMs)} ms after the database answered again; ${writes.length} writes, each exactly once`,
  )
}, 120_000)
