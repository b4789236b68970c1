/**
 * Replicas that start together on a new, empty database (MIGRATE_ON_START=true, no bootstrap token):
 * all of them must become ready — one migrates while the others wait on the migration lock and then
 * find the schema up to date; one creates the admin token. Real processes, as a Deployment rollout
 * or `docker compose up --scale api=4` starts them.
 */
import { afterAll, expect, test } from 'bun:test'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import journal from '../../drizzle/meta/_journal.json'
import { mysqlDriver } from '../../src/config'
import { freePort } from '../../src/db/local-server'

const REPLICAS = 4
const serverUrl = new URL(process.env.TEST_DATABASE_SERVER_URL ?? '')
const name = `start_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
const url = new URL(serverUrl)
url.pathname = `/${name}`
const root = join(import.meta.dir, '../..')
const admin = await mysql.createConnection({ uri: serverUrl.toString() })
afterAll(async () => {
  await admin.query(`DROP DATABASE IF EXISTS \`${name}\``)
  await admin.end()
})

test(`${REPLICAS} replicas started at once on an empty database all become ready`, async () => {
  const ports = await Promise.all(Array.from({ length: REPLICAS }, () => freePort()))
  const started = performance.now()
  const replicas = ports.map((port) =>
    Bun.spawn([process.execPath, join(root, 'src/index.ts')], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ENV: 'test', ENABLE_OTEL: 'false', PORT: String(port), DATABASE_URL: url.toString(), LOG_LEVEL: 'info', SCALING_ENABLED: 'false', DB_DRIVER: mysqlDriver() },
      stdout: 'pipe',
      stderr: 'pipe',
    }),
  )
  try {
    const readyAfter = await Promise.all(
      ports.map(async (port, i) => {
        const deadline = Date.now() + 60_000
        while (Date.now() < deadline) {
          if (replicas[i]?.exitCode !== null) return Number.NaN
          const status = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status).catch(() => 0)
          if (status === 200) return performance.now() - started
          await Bun.sleep(100)
        }
        return Number.NaN
      }),
    )
    const exited = replicas.map((replica) => replica.exitCode)
    expect(exited).toEqual(replicas.map(() => null))
    expect(readyAfter.every(Number.isFinite)).toBe(true)
    const [migrations] = await admin.query(`select count(*) as n from \`${name}\`.__drizzle_migrations`)
    expect(Number((migrations as { n: number }[])[0]?.n)).toBe(journal.entries.length)
    const [tokens] = await admin.query(`select name from \`${name}\`.api_tokens`)
    expect(tokens as { name: string }[]).toEqual([{ name: 'admin' }])
    for (const replica of replicas) replica.kill('SIGTERM')
    const codes = await Promise.all(replicas.map((replica) => replica.exited))
    expect(codes).toEqual(replicas.map(() => 0))
    const logs = await Promise.all(replicas.map((replica) => new Response(replica.stdout).text()))
    const waits = logs.flatMap((log) =>
      log
        .split('\n')
        .filter((line) => line.includes('"migrations applied"'))
        .map((line) => Number(JSON.parse(line).waited_for_another_replica_ms)),
    )
    expect(waits.length).toBe(REPLICAS)
    console.log(
      `concurrent start: ${REPLICAS} replicas on an empty database, all ready in ${Math.round(Math.max(...readyAfter))} ms (first ${Math.round(Math.min(...readyAfter))} ms); waits on the migration lock ${waits.sort((a, b) => a - b).join(', ')} ms; 1 admin token, ${journal.entries.length} migrations applied once`,
    )
  } finally {
    for (const replica of replicas) if (replica.exitCode === null) replica.kill('SIGKILL')
  }
}, 120_000)
